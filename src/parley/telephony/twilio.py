"""Twilio Media Streams: the TwiML that connects a call to Parley, and the bidirectional stream of the call.

Twilio posts to ``/twilio/voice`` when a call comes in; the answer connects the call to ``/twilio/media``, a
WebSocket on which Twilio sends ``connected``, ``start``, ``media`` (base64 μ-law, 8 kHz, 20 ms), ``dtmf``,
``mark`` and ``stop``, and Parley sends ``media``, ``mark`` and ``clear``. Each stream is one call (``Call``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from xml.etree import ElementTree

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, Response

from ..auth import key_accepted, presented_key
from ..config import Settings
from ..knowledge import KnowledgeLibrary
from ..services import Services
from . import twilio_signature
from .call import Call, CallError, CallSettings

log = logging.getLogger(__name__)

VOICE_PATH = "/twilio/voice"
MEDIA_PATH = "/twilio/media"
# Parameters of the webhook's URL that the TwiML hands on to the stream: how the call's session starts.
CALL_PARAMETERS = ("instructions", "voice", "knowledge", "turn_detection", "max_output_tokens")
# The stream parameter that carries Parley's API key (Twilio cannot set headers on the stream's request).
KEY_PARAMETER = "api_key"
FRAME_BYTES = 160  # 20 ms of μ-law at 8 kHz
# A Twilio message is a few hundred bytes; anything this large is not one.
MAX_MESSAGE_CHARS = 64 * 1024
MULAW = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}


def twilio_routes(settings: Settings, services: Services, library: KnowledgeLibrary) -> APIRouter:
    router = APIRouter()

    @router.post(VOICE_PATH)
    async def voice(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        params = parse_qsl(body, keep_blank_values=True)
        if settings.twilio_auth_token:
            urls = _signed_urls(settings, VOICE_PATH, str(request.url))
            if not twilio_signature.valid(
                settings.twilio_auth_token, urls, params, request.headers.get("x-twilio-signature")
            ):
                log.warning("twilio: refused %s without a valid X-Twilio-Signature", VOICE_PATH)
                return _error(403, "invalid_signature", "Missing or invalid X-Twilio-Signature.")
        key = presented_key(request.headers, request.query_params, ())
        if not key_accepted(key, settings.api_keys):
            return _error(401, "invalid_api_key", "Missing or invalid API key.")
        if not services.ready.is_set():
            return _error(503, "not_ready", "The server is still loading its models; retry shortly.")
        query = request.query_params
        stream_parameters = {name: query[name] for name in CALL_PARAMETERS if name in query}
        form = dict(params)
        if form.get("From"):
            stream_parameters["caller"] = form["From"]
        if settings.api_keys and key:
            stream_parameters[KEY_PARAMETER] = key
        stream_url = public_base(settings, str(request.url), websocket=True) + MEDIA_PATH
        log.info("twilio: call %s from %s connected to %s", form.get("CallSid"), form.get("From"), stream_url)
        return Response(twiml(stream_url, stream_parameters), media_type="application/xml")

    @router.websocket(MEDIA_PATH)
    async def media(websocket: WebSocket) -> None:
        if settings.twilio_auth_token:
            urls = _signed_urls(settings, MEDIA_PATH, str(websocket.url))
            if not twilio_signature.valid(
                settings.twilio_auth_token, urls, [], websocket.headers.get("x-twilio-signature")
            ):
                log.warning("twilio: refused a stream without a valid X-Twilio-Signature")
                await websocket.send_denial_response(
                    _error(403, "invalid_signature", "Missing or invalid X-Twilio-Signature.")
                )
                return
        key = presented_key(websocket.headers, websocket.query_params, ())
        if key is not None and not key_accepted(key, settings.api_keys):
            await websocket.send_denial_response(_error(401, "invalid_api_key", "Missing or invalid API key."))
            return
        if not services.ready.is_set() or services.llm is None or services.voice is None:
            await websocket.send_denial_response(_error(503, "not_ready", "The server is still loading its models."))
            return
        await websocket.accept()
        stream = MediaStream(websocket, settings, services, library, key_checked=key is not None)
        await stream.serve()

    return router


def twiml(stream_url: str, parameters: dict[str, str]) -> str:
    """``<Response><Connect><Stream url=...>`` with one ``<Parameter>`` per entry (escaped as XML)."""
    response = ElementTree.Element("Response")
    stream = ElementTree.SubElement(ElementTree.SubElement(response, "Connect"), "Stream", url=stream_url)
    for name, value in parameters.items():
        ElementTree.SubElement(stream, "Parameter", name=name, value=value)
    return '<?xml version="1.0" encoding="UTF-8"?>' + ElementTree.tostring(response, encoding="unicode")


def public_base(settings: Settings, request_url: str, *, websocket: bool) -> str:
    """Where carriers reach this server: ``PARLEY_PUBLIC_URL`` if set, else the request's host, always TLS (Twilio
    only connects streams over ``wss``)."""
    parts = urlsplit(settings.public_url or request_url)
    scheme = "wss" if websocket else "https"
    if settings.public_url and parts.scheme in ("http", "ws"):
        scheme = "ws" if websocket else "http"
    path = parts.path.rstrip("/") if settings.public_url else ""
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def _signed_urls(settings: Settings, path: str, request_url: str) -> list[str]:
    if not settings.public_url:
        return twilio_signature.signed_urls(request_url)
    query = urlsplit(request_url).query
    websocket = urlsplit(request_url).scheme in ("ws", "wss")
    public = public_base(settings, request_url, websocket=websocket) + path + (f"?{query}" if query else "")
    return twilio_signature.signed_urls(public)


def _error(status: int, code: str, message: str) -> JSONResponse:
    body = {"error": {"type": "invalid_request_error", "code": code, "message": message}}
    return JSONResponse(body, status_code=status)


class StreamError(Exception):
    """A message that cannot belong to a well-formed stream: the call ends."""


class TwilioLine:
    """The call's audio out, as Twilio's messages: ``media`` in 20 ms frames, then a ``mark``; ``clear``."""

    def __init__(self, websocket: WebSocket, stream_sid: str) -> None:
        self._websocket = websocket
        self._stream_sid = stream_sid

    async def play(self, audio: bytes, mark: str) -> None:
        for start in range(0, len(audio), FRAME_BYTES):
            payload = base64.b64encode(audio[start : start + FRAME_BYTES]).decode("ascii")
            await self._send({"event": "media", "media": {"payload": payload}})
        await self._send({"event": "mark", "mark": {"name": mark}})

    async def clear(self) -> None:
        await self._send({"event": "clear"})

    async def _send(self, message: dict[str, Any]) -> None:
        await self._websocket.send_text(json.dumps({**message, "streamSid": self._stream_sid}))


class MediaStream:
    """One Twilio stream: checks each message against the protocol, and runs the call it carries."""

    def __init__(
        self,
        websocket: WebSocket,
        settings: Settings,
        services: Services,
        library: KnowledgeLibrary,
        *,
        key_checked: bool,
    ) -> None:
        self._websocket = websocket
        self._settings = settings
        self._services = services
        self._library = library
        self._key_checked = key_checked
        self._call: Call | None = None
        self._stream_sid: str | None = None
        self._sequence = 0
        self._name = "twilio stream"

    async def serve(self) -> None:
        reason = "the stream closed"
        try:
            reason = await self._receive()
        except StreamError as exc:
            reason = str(exc)
            log.warning("%s: %s; ending the call", self._name, exc)
        finally:
            if self._call is not None:
                await self._call.close(reason)
            else:
                log.info("%s: ended before a call started (%s)", self._name, reason)
            with contextlib.suppress(Exception):
                await self._websocket.close(code=1000)

    async def _receive(self) -> str:
        """Handle messages until the stream stops; return why it ended."""
        timeout_s = self._settings.phone_line_timeout_s
        while True:
            receiving = asyncio.create_task(self._websocket.receive())
            waiting: set[asyncio.Future[Any]] = {receiving}
            ended = asyncio.create_task(self._call.wait_ended()) if self._call is not None else None
            if ended is not None:
                waiting.add(ended)
            done, _ = await asyncio.wait(waiting, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if ended is not None and not ended.done():
                ended.cancel()
            if receiving not in done:
                receiving.cancel()
                with contextlib.suppress(BaseException):
                    await receiving
                if not done:
                    raise StreamError(f"nothing received for {timeout_s:g} s (a stream that never sent stop)")
                return "the session ended"
            message = receiving.result()
            if message["type"] == "websocket.disconnect":
                if self._call is not None:
                    log.warning("%s: the stream closed without a stop message", self._name)
                return "the stream closed"
            if await self._handle(message.get("text")):
                return "the caller hung up (stop)"

    async def _handle(self, text: str | None) -> bool:
        """One message; True when it was ``stop``."""
        if text is None:
            raise StreamError("a binary frame; Twilio sends JSON text")
        if len(text) > MAX_MESSAGE_CHARS:
            raise StreamError(f"a message of {len(text)} characters; Twilio's are far smaller")
        try:
            message = json.loads(text)
        except ValueError as exc:
            raise StreamError(f"a message that is not JSON ({exc})") from None
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            raise StreamError("a message without an 'event' name")
        event = message["event"]
        self._check_sequence(message)
        if event == "connected":
            if self._call is not None:
                raise StreamError("'connected' after 'start'")
        elif event == "start":
            await self._start(message)
        elif event in ("media", "mark", "dtmf", "stop"):
            call = self._started(message, event)
            if event == "media":
                await call.hear(_media_payload(message))
            elif event == "mark":
                call.played(_field(message, "mark", "name"))
            elif event == "dtmf":
                digit = _field(message, "dtmf", "digit")
                if len(digit) != 1 or digit not in "0123456789*#ABCD":
                    raise StreamError(f"a dtmf message with the digit {digit!r}")
                call.dtmf(digit)
            else:
                return True
        else:
            raise StreamError(f"an unknown event {event[:40]!r}")
        return False

    def _check_sequence(self, message: dict[str, Any]) -> None:
        """Twilio numbers its messages from 1 up; one that goes back is out of order."""
        number = message.get("sequenceNumber")
        if number is None:
            return
        try:
            sequence = int(number)
        except (TypeError, ValueError):
            raise StreamError(f"a sequenceNumber {str(number)[:20]!r} that is not a number") from None
        if sequence <= self._sequence:
            raise StreamError(f"message {sequence} after message {self._sequence} (out of order)")
        self._sequence = sequence

    def _started(self, message: dict[str, Any], event: str) -> Call:
        if self._call is None:
            raise StreamError(f"'{event}' before 'start'")
        if message.get("streamSid") != self._stream_sid:
            raise StreamError(f"'{event}' for another stream ({str(message.get('streamSid'))[:40]!r})")
        return self._call

    async def _start(self, message: dict[str, Any]) -> None:
        if self._call is not None:
            raise StreamError("a second 'start'")
        start = message.get("start")
        if not isinstance(start, dict):
            raise StreamError("a 'start' message without its 'start' object")
        stream_sid, call_sid = start.get("streamSid") or message.get("streamSid"), start.get("callSid")
        if not isinstance(stream_sid, str) or not stream_sid or not isinstance(call_sid, str) or not call_sid:
            raise StreamError("a 'start' message without streamSid and callSid")
        self._name = f"call {call_sid}"
        media_format = start.get("mediaFormat")
        if isinstance(media_format, dict) and any(media_format.get(k, v) != v for k, v in MULAW.items()):
            raise StreamError(f"a stream in {media_format}; Parley takes audio/x-mulaw at 8000 Hz, mono")
        parameters = start.get("customParameters") or {}
        if not isinstance(parameters, dict) or not all(isinstance(v, str) for v in parameters.values()):
            raise StreamError("customParameters that are not names and strings")
        if not self._key_checked and not key_accepted(parameters.get(KEY_PARAMETER), self._settings.api_keys):
            raise StreamError(f"no valid API key (the stream's '{KEY_PARAMETER}' parameter)")
        try:
            call_settings = CallSettings.resolve(self._settings, self._library, parameters)
        except CallError as exc:
            raise StreamError(str(exc)) from None
        self._stream_sid = stream_sid
        services = self._services
        assert services.llm is not None and services.voice is not None
        line = TwilioLine(self._websocket, stream_sid)
        self._call = Call(
            call_sid, "g711_ulaw", call_settings, self._settings, services.llm, services.voice, self._library, line
        )
        log.info("%s: stream %s started, caller %s", self._name, stream_sid, parameters.get("caller", "unknown"))
        await self._call.start()


def _field(message: dict[str, Any], section: str, name: str) -> str:
    value = message.get(section)
    value = value.get(name) if isinstance(value, dict) else None
    if not isinstance(value, str):
        raise StreamError(f"a '{message['event']}' message without {section}.{name}")
    return value


def _media_payload(message: dict[str, Any]) -> bytes:
    track = message.get("media", {}).get("track", "inbound") if isinstance(message.get("media"), dict) else None
    if track not in ("inbound", "inbound_track"):
        raise StreamError(f"media of the track {track!r}; Parley listens to the caller (inbound)")
    try:
        audio = base64.b64decode(_field(message, "media", "payload"), validate=True)
    except binascii.Error:
        raise StreamError("media whose payload is not base64") from None
    if not audio:
        raise StreamError("media with an empty payload")
    return audio
