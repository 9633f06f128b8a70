"""A phone call as a Realtime session of Parley's own: caller audio in, the session's answers out to a line.

The line (Twilio Media Streams, or RTP from a SIP call) only carries G.711 audio, marks and clears; everything
else is the session's: turn detection, transcription, tools, knowledge, voice and usage. The call reads the
session's server events itself instead of sending them as JSON, and acts on the session with client events.

Barge-in: the line plays audio later than Parley sends it, so what the caller heard is known only from the marks
the line reports as played. When the caller talks over an answer, the call clears the line at once and truncates
the answer to the last played mark.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..config import Settings
from ..engines.llm import LanguageModel
from ..ids import new_id
from ..knowledge import KnowledgeLibrary
from ..metrics import ACTIVE_SESSIONS
from ..realtime.connection import DEFAULT_MODEL_NAME
from ..realtime.dialect import Dialect
from ..realtime.handlers import handle_event
from ..realtime.session import RealtimeSession
from ..realtime.session_config import AudioFormatName, SessionConfig, Transcription, TurnDetection
from ..voice import audio as codec
from ..voice.stack import VoiceStack

log = logging.getLogger(__name__)

# Digits pressed within this long of each other are one entry: the answer waits for the caller to finish.
DTMF_PAUSE_S = 1.0


class CallError(Exception):
    """What ends a call early: bad input from the line, or a call set up with unknown settings."""


class Line(Protocol):
    """Where a call's audio goes: audio is queued for playback; the line reports each mark once played."""

    async def play(self, audio: bytes, mark: str) -> None:
        """Queue ``audio`` (the call's G.711 codec), then ``mark``, reported to ``Call.played`` when heard."""
        ...

    async def clear(self) -> None:
        """Drop every queued piece of audio not played yet; its marks are never reported as played."""
        ...


@dataclass(frozen=True)
class CallSettings:
    """How one call's session starts: from the server's settings and the call's own parameters."""

    instructions: str
    voice: str
    knowledge: str | None
    turn_detection: TurnDetection | None
    max_output_tokens: int | Literal["inf"] = "inf"

    @classmethod
    def resolve(cls, settings: Settings, library: KnowledgeLibrary, parameters: dict[str, str]) -> CallSettings:
        """``parameters`` (Twilio's custom parameters, a SIP header) override the settings per call."""
        knowledge = parameters.get("knowledge", library.default or "") or None
        if knowledge is not None and knowledge not in library:
            raise CallError(library.unknown_message(knowledge))
        detection_type = parameters.get("turn_detection", "server_vad")
        if detection_type not in ("server_vad", "semantic_vad"):
            raise CallError(f"unknown turn_detection {detection_type!r}: use server_vad or semantic_vad")
        tokens = parameters.get("max_output_tokens", "inf")
        if tokens != "inf" and not (tokens.isdigit() and 1 <= int(tokens) <= 4096):
            raise CallError(f"max_output_tokens {tokens[:20]!r} is not a number from 1 to 4096, or inf")
        return cls(
            max_output_tokens="inf" if tokens == "inf" else int(tokens),
            instructions=parameters.get("instructions") or settings.instructions,
            voice=parameters.get("voice") or settings.phone_voice,
            knowledge=knowledge,
            turn_detection=TurnDetection(type=detection_type).with_defaults(),  # type: ignore[arg-type]
        )


@dataclass
class _Piece:
    item_id: str
    end_ms: int  # where the piece ends in its item's audio


class Call:
    """One phone call: its session, what its line has been sent and played, and the task reading the session."""

    def __init__(
        self,
        call_id: str,
        audio_format: AudioFormatName,
        call_settings: CallSettings,
        settings: Settings,
        llm: LanguageModel,
        voice: VoiceStack,
        library: KnowledgeLibrary,
        line: Line,
    ) -> None:
        self.id = call_id
        self._line = line
        self._format = audio_format
        config = SessionConfig.initial(
            Dialect.GA,
            id=new_id("sess"),
            model=DEFAULT_MODEL_NAME,
            expires_at=int(time.time() + settings.max_session_minutes * 60),
            instructions=call_settings.instructions,
        )
        config.input_format = config.output_format = audio_format
        config.voice = call_settings.voice
        config.knowledge = call_settings.knowledge
        config.turn_detection = call_settings.turn_detection
        config.max_output_tokens = call_settings.max_output_tokens
        config.transcription = Transcription()  # the caller's words are logged with the call
        self.session = RealtimeSession(Dialect.GA, config, llm, voice, library)
        self._bytes_per_ms = codec.bytes_per_ms(audio_format)
        self._sent_bytes: dict[str, int] = {}  # audio sent to the line, per assistant item
        self._unplayed: dict[str, _Piece] = {}  # marks sent and not reported played yet, in order
        self._heard: dict[str, int] = {}  # per item: the end of its last played piece
        self._truncate: _Piece | None = None  # an interrupted answer, cut once its response is done
        self._responding = False
        self._digits: list[str] = []
        self._dtmf_timer: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._lifetime_s = settings.max_session_minutes * 60
        self._closed = False

    async def start(self) -> None:
        ACTIVE_SESSIONS.inc()
        log.info(
            "call %s: session %s started (%s, voice %s, knowledge %s)",
            self.id, self.session.id, self._format, self.session.config.voice, self.session.config.knowledge,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read_session(), name=f"call-{self.id}")
        self._expiry = asyncio.get_running_loop().call_later(self._lifetime_s, self._expire)

    def _expire(self) -> None:
        """At the maximum session length the session stops writing, and with it the call ends."""
        log.info("call %s: the session reached its maximum length", self.id)
        self.session.finish_writing()

    @property
    def ended(self) -> bool:
        """The session ended by itself (its maximum length, or a line that failed while it was written to)."""
        return self._reader is not None and self._reader.done()

    async def wait_ended(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(self._reader)

    # From the line ----------------------------------------------------------------------------------------

    async def hear(self, audio: bytes) -> None:
        """Caller audio in the call's codec, as it arrives."""
        self.session.frame_received_at = time.monotonic()
        await self.session.listen(audio)

    def played(self, mark: str) -> None:
        """The line has played everything up to ``mark``. Marks come back in the order they were sent; a mark
        that is not pending (cleared, or never sent) says nothing about this call's audio."""
        if mark not in self._unplayed:
            log.debug("call %s: mark %s is not pending", self.id, mark)
            return
        for name in list(self._unplayed):
            piece = self._unplayed.pop(name)
            self._heard[piece.item_id] = piece.end_ms
            if name == mark:
                break

    def dtmf(self, digit: str) -> None:
        """A key pressed on the caller's phone: logged, and given to the model as text once the caller pauses."""
        log.info("call %s: DTMF %s", self.id, digit)
        self._digits.append(digit)
        if self._dtmf_timer is not None:
            self._dtmf_timer.cancel()
        self._dtmf_timer = asyncio.get_running_loop().call_later(DTMF_PAUSE_S, self._digits_done)

    def _digits_done(self) -> None:
        self._dtmf_timer = None
        digits, self._digits = " ".join(self._digits), []
        self.session.own(asyncio.create_task(self._send_digits(digits)))

    async def _send_digits(self, digits: str) -> None:
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"[DTMF {digits}]"}]}
        await handle_event(self.session, {"type": "conversation.item.create", "item": item})
        if self.session.active_response is None:
            await handle_event(self.session, {"type": "response.create"})

    # From the session -------------------------------------------------------------------------------------

    async def _read_session(self) -> None:
        while (event := await self.session.next_event()) is not None:
            await self._on_event(event)

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "response.output_audio.delta":
            await self._send_audio(event["item_id"], base64.b64decode(event["delta"]))
        elif kind == "input_audio_buffer.speech_started":
            await self._caller_spoke()
        elif kind == "response.created":
            self._responding = True
        elif kind == "response.done":
            self._responding = False
            self._log_response(event["response"])
            await self._truncate_interrupted()
        elif kind == "conversation.item.input_audio_transcription.completed":
            log.info("call %s: caller said %r", self.id, event["transcript"])
        elif kind == "conversation.item.truncated":
            item = self.session.conversation.get(event["item_id"])
            heard = item.content[event["content_index"]].transcript
            log.info("call %s: answer %s truncated at %d ms: %r", self.id, item.id, event["audio_end_ms"], heard)
        elif kind == "error":
            log.warning("call %s: %s", self.id, event["error"].get("message"))

    async def _send_audio(self, item_id: str, audio: bytes) -> None:
        sent = self._sent_bytes[item_id] = self._sent_bytes.get(item_id, 0) + len(audio)
        mark = new_id("mark")
        self._unplayed[mark] = _Piece(item_id, sent // self._bytes_per_ms)
        await self._line.play(audio, mark)

    async def _caller_spoke(self) -> None:
        """Barge-in: the session has cancelled its response; the line must drop what it has not played yet."""
        detection = self.session.config.turn_detection
        if not self._unplayed or detection is None or not detection.interrupt_response:
            return
        item_id = next(reversed(self._unplayed.values())).item_id
        self._unplayed.clear()
        await self._line.clear()
        self._truncate = _Piece(item_id, self._heard.get(item_id, 0))
        log.info("call %s: barge-in; line cleared, %d ms of the answer were played", self.id, self._truncate.end_ms)
        if not self._responding:
            await self._truncate_interrupted()

    async def _truncate_interrupted(self) -> None:
        """Cut the interrupted answer to what the caller heard (once its audio is complete in the item)."""
        piece, self._truncate = self._truncate, None
        if piece is None:
            return
        event = {
            "type": "conversation.item.truncate",
            "item_id": piece.item_id,
            "content_index": 0,
            "audio_end_ms": piece.end_ms,
        }
        await handle_event(self.session, event)

    def _log_response(self, response: dict[str, Any]) -> None:
        said = " ".join(
            part.get("transcript") or part.get("text") or ""
            for item in response["output"]
            for part in item.get("content", ())
        )
        usage = response.get("usage") or {}
        log.info(
            "call %s: answer %s %r (%s tokens in, %s out)",
            self.id, response["status"], said, usage.get("input_tokens"), usage.get("output_tokens"),
        )  # fmt: skip

    # End --------------------------------------------------------------------------------------------------

    async def close(self, reason: str) -> None:
        """End the call: every task of its session ends with it."""
        if self._closed:
            return
        self._closed = True
        for timer in (self._dtmf_timer, self._expiry):
            if timer is not None:
                timer.cancel()
        await self.session.close()
        if self._reader is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._reader
        ACTIVE_SESSIONS.dec()
        log.info("call %s: ended (%s)", self.id, reason)
