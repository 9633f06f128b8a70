"""A Realtime WebSocket connection: handshake details, the receive loop, frame limits and session expiry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..config import Settings
from ..engines.llm import LanguageModel
from ..ids import new_id
from ..knowledge import KnowledgeLibrary
from ..metrics import ACTIVE_SESSIONS
from ..ops.recorder import SessionRecorder
from ..voice.stack import VoiceStack
from .dialect import Dialect
from .errors import RealtimeError
from .handlers import dispatch
from .session import RealtimeSession
from .session_config import BetaSessionUpdate, GASessionUpdate, SessionConfig

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "gpt-realtime"


def _opted_in(websocket: WebSocket, parameter: str) -> bool:
    return websocket.query_params.get(parameter, "").lower() in ("1", "true", "yes")


def offered_subprotocols(websocket: WebSocket) -> list[str]:
    return list(websocket.scope.get("subprotocols", []))


async def serve_connection(
    websocket: WebSocket,
    settings: Settings,
    llm: LanguageModel,
    voice: VoiceStack,
    library: KnowledgeLibrary,
    preset: GASessionUpdate | BetaSessionUpdate | None = None,
    recorder: SessionRecorder | None = None,
) -> None:
    """Serve one session. ``preset`` holds the settings a client secret was minted with. ``?knowledge=NAME``
    (checked by the caller) picks its knowledge base; ``?knowledge=`` starts it with none; without the parameter
    it gets the server's default base. ``recorder`` writes it to the database (and was counted against its
    key's limits: it is released when the session ends)."""
    subprotocols = offered_subprotocols(websocket)
    dialect = Dialect.detect(websocket.headers, subprotocols)
    # Browsers fail the handshake unless one offered subprotocol is selected.
    await websocket.accept(subprotocol="realtime" if "realtime" in subprotocols else None)

    lifetime_s = settings.max_session_minutes * 60
    config = SessionConfig.initial(
        dialect,
        id=new_id("sess"),
        model=websocket.query_params.get("model") or DEFAULT_MODEL_NAME,
        expires_at=int(time.time() + lifetime_s),
        instructions=settings.instructions,
    )
    if preset is not None:
        config = preset.apply(config)
    chosen = websocket.query_params.get("knowledge")
    if chosen is None:
        config.knowledge = library.default
    else:
        config.knowledge, config.echo_knowledge = chosen or None, True
    # Parley's extensions reach only clients that ask for them in the URL: strict clients never see them.
    session = RealtimeSession(
        dialect, config, llm, voice, library, report_timings=_opted_in(websocket, "parley_timings"), recorder=recorder
    )
    session.report_language = _opted_in(websocket, "parley_language")
    if recorder is not None:
        recorder.opened(session.id, dialect, config.model)
    writer = asyncio.create_task(session.write_loop(websocket.send_text), name=f"writer-{session.id}")
    expiry = asyncio.get_running_loop().call_later(lifetime_s, _expire, session)
    ACTIVE_SESSIONS.inc()
    log.info("session %s opened (%s)", session.id, dialect.value)
    session.announce()
    try:
        await _receive_loop(websocket, session, settings.max_event_bytes, writer)
    finally:
        expiry.cancel()
        await session.close()
        with contextlib.suppress(Exception):
            await writer
        ACTIVE_SESSIONS.dec()
        if recorder is not None:
            recorder.closed(session.end_reason)
        log.info("session %s closed", session.id)
    with contextlib.suppress(Exception):
        await websocket.close(code=session.close_code)


async def _receive_loop(
    websocket: WebSocket, session: RealtimeSession, max_event_bytes: int, writer: asyncio.Task[None]
) -> None:
    while not writer.done():
        receiving = asyncio.create_task(websocket.receive())
        await asyncio.wait({receiving, writer}, return_when=asyncio.FIRST_COMPLETED)
        if not receiving.done():
            # The writer ended (expiry or a dead socket): stop reading.
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await receiving
            return
        message = receiving.result()
        session.frame_received_at = time.monotonic()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            session.error(RealtimeError("Events must be sent as text frames of JSON.", code="invalid_frame"), None)
        elif (size := _utf8_size(text, max_event_bytes)) > max_event_bytes:
            session.error(
                RealtimeError(
                    f"Event too large: {size} bytes; the maximum is {max_event_bytes} bytes.",
                    code="event_too_large",
                ),
                _peek_event_id(text),
            )
        else:
            await dispatch(session, text)


def _utf8_size(text: str, limit: int) -> int:
    """The frame's size in bytes, as the limit means it; only encoded when characters alone cannot tell."""
    if len(text) > limit or len(text) * 4 <= limit:
        return len(text)
    return len(text.encode("utf-8", errors="surrogatepass"))


# An oversized frame is not parsed, but its event_id usually sits at one end (the SDK sends keys in the
# order the caller wrote them); an escaped "event_id" inside a string value cannot match.
_EVENT_ID = re.compile(r'"event_id"\s*:\s*("(?:[^"\\]|\\.)*")')
_PEEK_CHARS = 1024


def _peek_event_id(text: str) -> str | None:
    for end in (text[:_PEEK_CHARS], text[-_PEEK_CHARS:]):
        if match := _EVENT_ID.search(end):
            with contextlib.suppress(ValueError):
                value = json.loads(match.group(1))
                return value if isinstance(value, str) else None
    return None


def _expire(session: RealtimeSession) -> None:
    """At the maximum session length: say why, then let the writer flush and the socket close with 1000."""
    log.info("session %s expired", session.id)
    session.end_reason = "expired"
    session.error(
        RealtimeError("Your session hit the maximum duration of the session.", code="session_expired"),
        None,
    )
    session.finish_writing()
