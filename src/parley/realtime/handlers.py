"""One handler per client event type, in a registry keyed by the event's ``type`` (grep for the name)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..voice import audio as codec
from .dialect import Dialect
from .errors import RealtimeError, from_validation_error
from .items import ItemIn, decode_base64
from .response import Response
from .response_params import BetaResponseCreate, GAResponseCreate
from .session import RealtimeSession
from .session_config import BetaSessionUpdate, GASessionUpdate, check_tool_choice

log = logging.getLogger(__name__)

Handler = Callable[[RealtimeSession, dict[str, Any], str | None], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}

# Decoding base64 of a multi-megabyte append is CPU work worth keeping off the event loop.
_OFFLOAD_BASE64_CHARS = 256 * 1024
# OpenAI refuses to commit less audio than this.
MIN_COMMIT_MS = 100


def handles(event_type: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[event_type] = handler
        return handler

    return register


async def dispatch(session: RealtimeSession, raw: str) -> None:
    """Handle one client frame; any problem becomes an ``error`` event and the session goes on."""
    try:
        event = _parse_json(raw)
    except RealtimeError as exc:
        session.error(exc, None)
        return
    await handle_event(session, event)


async def handle_event(session: RealtimeSession, event: dict[str, Any]) -> None:
    """Handle one parsed client event (a phone call acts on its own session this way); any problem becomes an
    ``error`` event and the session goes on."""
    client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    try:
        await _handle(session, event, client_event_id)
    except RealtimeError as exc:
        session.error(exc, client_event_id)
    except ValidationError as exc:
        session.error(from_validation_error(exc, data=event), client_event_id)
    except Exception:
        log.exception("session %s: handler failed", session.id)
        session.error(
            RealtimeError("The server had an error handling this event.", code="server_error", type="server_error"),
            client_event_id,
        )


async def _handle(session: RealtimeSession, event: dict[str, Any], client_event_id: str | None) -> None:
    event_type = event.get("type")
    if event_type is None:
        raise RealtimeError("Missing required parameter: 'type'.", code="missing_required_parameter", param="type")
    if not isinstance(event_type, str) or event_type not in HANDLERS:
        raise RealtimeError(
            f"Invalid value: '{event_type}'. Supported values are: " + ", ".join(f"'{t}'" for t in HANDLERS) + ".",
            code="invalid_value",
            param="type",
        )
    await HANDLERS[event_type](session, event, client_event_id)


def _parse_json(raw: str) -> dict[str, Any]:
    try:
        event = json.loads(raw, parse_constant=_reject_constant)
        # A lone surrogate escape (\ud800) parses, but can never be sent back: echoed in session.updated
        # or an error message, it would kill the writer and with it the session.
        if ("\\ud" in raw or "\\uD" in raw) and isinstance(event, dict):
            json.dumps(event, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise RealtimeError("Invalid JSON: a string holds an unpaired surrogate escape.", code="invalid_json") from None
    except (ValueError, RecursionError) as exc:
        # ValueError: bad syntax, NaN or Infinity, integers past Python's digit limit;
        # RecursionError: nesting deeper than the parser goes.
        raise RealtimeError(f"Invalid JSON: {exc}.", code="invalid_json") from None
    if not isinstance(event, dict):
        raise RealtimeError("Each event must be a JSON object.", code="invalid_json")
    return event


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259); stored and echoed back, they break clients' parsers."""
    raise ValueError(f"{name} is not a valid JSON value")


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")


# Session ------------------------------------------------------------------------------------------------


class _SessionUpdate(_Event):
    session: dict[str, Any]


@handles("session.update")
async def session_update(session: RealtimeSession, event: dict[str, Any], _: str | None) -> None:
    payload = _SessionUpdate.model_validate(event).session
    update_model = GASessionUpdate if session.dialect is Dialect.GA else BetaSessionUpdate
    try:
        update = update_model.model_validate(payload)
    except ValidationError as exc:
        raise from_validation_error(exc, "session", payload) from None
    config = update.apply(session.config)
    check_tool_choice(config.tools, config.tool_choice, "session.tool_choice")
    session.apply_config(config)
    session.emit("session.updated", session=session.config.render(session.dialect))


# Input audio buffer -------------------------------------------------------------------------------------


class _Append(_Event):
    audio: str


@handles("input_audio_buffer.append")
async def input_audio_append(session: RealtimeSession, event: dict[str, Any], _: str | None) -> None:
    encoded = _Append.model_validate(event).audio
    if len(encoded) > _OFFLOAD_BASE64_CHARS:
        audio = await asyncio.to_thread(decode_base64, encoded, "audio")
    else:
        audio = decode_base64(encoded, "audio")
    await session.listen(audio)


@handles("input_audio_buffer.commit")
async def input_audio_commit(session: RealtimeSession, event: dict[str, Any], _: str | None) -> None:
    duration = session.listener.buffered_ms()
    if duration < MIN_COMMIT_MS:
        raise RealtimeError(
            "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
            f"but buffer only has {duration:.2f}ms of audio.",
            code="input_audio_buffer_commit_empty",
        )
    session.commit_audio()


@handles("input_audio_buffer.clear")
async def input_audio_clear(session: RealtimeSession, event: dict[str, Any], _: str | None) -> None:
    session.clear_audio()
    session.emit("input_audio_buffer.cleared")


# Conversation -------------------------------------------------------------------------------------------


class _ItemCreate(_Event):
    item: ItemIn
    previous_item_id: str | None = None


class _ItemRef(_Event):
    item_id: str = Field(min_length=1)


class _Truncate(_ItemRef):
    content_index: int = Field(ge=0)
    audio_end_ms: int = Field(ge=0)


@handles("conversation.item.create")
async def conversation_item_create(session: RealtimeSession, event: dict[str, Any], _: str | None) -> None:
    request = _ItemCreate.model_validate(event)
    session.add_item(request.item.to_item(audio_format=session.config.input_format), request.previous_item_id)


@handles("conversation.item.retrieve")
async def conversation_item_retrieve(session: RealtimeSession, event: dict[str, Any], _: str | None) -> None:
    item = session.conversation.get(_ItemRef.model_validate(event).item_id)
    session.emit("conversation.item.retrieved", item=item.render(session.dialect, include_audio=True))


@handles("conversation.item.delete")
async def conversation_item_delete(session: RealtimeSession, event: dict[str, Any], _: str | None) -> None:
    item_id = _ItemRef.model_validate(event).item_id
    active = session.active_response
    if active is not None and any(item.id == item_id for item in active.output):
        raise RealtimeError(
            "Cannot delete an item while its response is in progress.", code="invalid_value", param="item_id"
        )
    session.conversation.delete(item_id)
    session.emit("conversation.item.deleted", item_id=item_id)


@handles("conversation.item.truncate")
async def conversation_item_truncate(session: RealtimeSession, event: dict[str, Any], _: str | None) -> None:
    request = _Truncate.model_validate(event)
    item = session.conversation.get(request.item_id)
    is_audio = (
        item.type == "message"
        and item.role == "assistant"
        and request.content_index < len(item.content)
        and item.content[request.content_index].type == "output_audio"
    )
    if not is_audio:
        raise RealtimeError("Only model output audio messages can be truncated.", code="invalid_value", param="item_id")
    part = item.content[request.content_index]
    bytes_per_ms = codec.bytes_per_ms(part.audio_format or session.config.output_format)
    duration_ms = len(part.audio or b"") // bytes_per_ms
    if request.audio_end_ms > duration_ms:
        raise RealtimeError(
            f"Audio content of {duration_ms}ms is already shorter than {request.audio_end_ms}ms.",
            code="invalid_value",
            param="audio_end_ms",
        )
    # What was not played was not heard: the next response must not see it.
    part.audio = (part.audio or b"")[: request.audio_end_ms * bytes_per_ms]
    part.transcript = part.transcript_heard(request.audio_end_ms)
    part.word_ends = [word for word in part.word_ends if word[0] <= request.audio_end_ms]
    session.record(item)
    session.emit(
        "conversation.item.truncated",
        item_id=item.id,
        content_index=request.content_index,
        audio_end_ms=request.audio_end_ms,
    )


# Responses ----------------------------------------------------------------------------------------------


class _ResponseCreate(_Event):
    response: dict[str, Any] | None = None


class _ResponseCancel(_Event):
    response_id: str | None = None


@handles("response.create")
async def response_create(session: RealtimeSession, event: dict[str, Any], _: str | None) -> None:
    overrides = _ResponseCreate.model_validate(event).response or {}
    create_model = GAResponseCreate if session.dialect is Dialect.GA else BetaResponseCreate
    try:
        params = create_model.model_validate(overrides).to_params(session.config, session.conversation)
    except ValidationError as exc:
        raise from_validation_error(exc, "response", overrides) from None
    check_tool_choice(params.tools, params.tool_choice, "response.tool_choice")
    active = session.active_response
    if params.in_conversation and active is not None:
        raise RealtimeError(
            f"Conversation already has an active response in progress: {active.id}. "
            "Wait until the response is finished before creating a new one.",
            code="conversation_already_has_active_response",
        )
    session.start_response(Response(session, params, session.conversation, session.llm))


@handles("response.cancel")
async def response_cancel(session: RealtimeSession, event: dict[str, Any], _: str | None) -> None:
    response_id = _ResponseCancel.model_validate(event).response_id
    running = [r for r in (session.active_response, *session.out_of_band) if r is not None]
    if response_id is not None:
        running = [r for r in running if r.id == response_id]
    elif session.active_response is not None:
        running = [session.active_response]
    if not running:
        raise RealtimeError("Cancellation failed: no active response found", code="response_cancel_not_active")
    await running[0].cancel("client_cancelled")
