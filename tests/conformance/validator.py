"""Strict conformance checks for server events of the OpenAI Realtime API, GA and beta dialects.

Two layers (PROTOCOL.md §4.2, §6):

* `EventValidator.validate_event`: one event against the official `openai` SDK types, plus the keys
  those types do not know (openai's BaseModel accepts extras silently), the `event_id` shape and the
  dialect's event names.
* `check_stream`: what the types cannot express: ordering, lifecycles, ids and indexes that refer to
  earlier events, and `.done` payloads that must equal their deltas.

Problems come back as readable strings, so a failing test can show all of them at once.
"""

import base64
import operator
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, reduce
from typing import Annotated, Any, Literal, get_args

from openai.types.beta.realtime.realtime_server_event import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime.realtime_server_event import RealtimeServerEvent as GaServerEvent
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

Dialect = Literal["ga", "beta"]

# Extra keys that real OpenAI traffic carries although the SDK models lack them (PROTOCOL.md §2.4, §4.2).
# "*" stands for one key; a leading "*." means "at any depth". List indexes are ignored when matching.
DEFAULT_ALLOWED_EXTRAS: tuple[str, ...] = (
    "session.object",
    "session.id",
    "session.expires_at",
    "*.obfuscation",
    "response.usage.*.image_tokens",
    "response.usage.*.cached_tokens_details",
)

_UNIONS = {"ga": GaServerEvent, "beta": BetaServerEvent}

# Still a member of the GA union (legacy), but GA clients such as Pipecat have no handler for it (§1.2).
_LEGACY_ON_GA = frozenset({"conversation.item.created"})

# The only server event whose SDK model has no event_id (SIP key presses).
_WITHOUT_EVENT_ID = "input_audio_buffer.dtmf_event_received"

_FINAL_STATUSES = frozenset({"completed", "cancelled", "incomplete", "failed"})

# Keys the SDK makes optional but clients rely on: Pipecat's Response model requires them (§4.3).
_RESPONSE_KEYS = ("id", "object", "status", "status_details", "output", "usage")
_USAGE_KEYS = ("total_tokens", "input_tokens", "output_tokens", "input_token_details", "output_token_details")

# A session.created/updated must carry the full effective session (§2.4, §6.3).
_SESSION_KEYS: dict[str, tuple[str, ...]] = {
    "ga": (
        "type",
        "object",
        "id",
        "model",
        "expires_at",
        "output_modalities",
        "instructions",
        "audio",
        "tools",
        "tool_choice",
        "max_output_tokens",
    ),
    "beta": (
        "object",
        "id",
        "model",
        "expires_at",
        "modalities",
        "instructions",
        "voice",
        "input_audio_format",
        "output_audio_format",
        "turn_detection",
        "tools",
        "tool_choice",
        "temperature",
        "max_response_output_tokens",
    ),
}

# Content-part streams. Both dialects' names are listed; validate_event rejects the foreign ones.
_DELTA_STREAMS = {
    "response.output_text.delta": "text",
    "response.text.delta": "text",
    "response.output_audio.delta": "audio",
    "response.audio.delta": "audio",
    "response.output_audio_transcript.delta": "transcript",
    "response.audio_transcript.delta": "transcript",
}
# Final event of a stream -> (stream, key holding the full value; audio has none).
_DONE_STREAMS: dict[str, tuple[str, str | None]] = {
    "response.output_text.done": ("text", "text"),
    "response.text.done": ("text", "text"),
    "response.output_audio.done": ("audio", None),
    "response.audio.done": ("audio", None),
    "response.output_audio_transcript.done": ("transcript", "transcript"),
    "response.audio_transcript.done": ("transcript", "transcript"),
}
# Stream -> the content part type (response.content_part.added part.type) that carries it.
_PART_TYPE = {"text": "text", "audio": "audio", "transcript": "audio"}


def _members(union: Any) -> tuple[type[BaseModel], ...]:
    # The SDK alias is Annotated[Union[...], PropertyInfo(...)]; PropertyInfo is openai's own marker
    # that pydantic ignores, so the discriminated union is rebuilt from the bare members.
    return get_args(get_args(union)[0])


@cache
def _adapter(dialect: Dialect) -> TypeAdapter[Any]:
    union = reduce(operator.or_, _members(_UNIONS[dialect]))
    return TypeAdapter(Annotated[union, Field(discriminator="type")])


@cache
def _event_types(dialect: Dialect) -> frozenset[str]:
    return frozenset(get_args(m.model_fields["type"].annotation)[0] for m in _members(_UNIONS[dialect]))


@cache
def _foreign_types(dialect: Dialect) -> frozenset[str]:
    other: Dialect = "beta" if dialect == "ga" else "ga"
    foreign = _event_types(other) - _event_types(dialect)
    return foreign | _LEGACY_ON_GA if dialect == "ga" else foreign


def _extra_pattern(pattern: str) -> re.Pattern[str]:
    anywhere = pattern.startswith("*.")
    keys = (pattern[2:] if anywhere else pattern).split(".")
    body = r"\.".join("[^.]+" if key == "*" else re.escape(key) for key in keys)
    return re.compile((r"(?:.+\.)?" if anywhere else "") + body)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _location(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


def _extra_keys(value: Any, path: str = "") -> Iterator[str]:
    """Dotted paths of every key the SDK models accepted without declaring it."""
    if isinstance(value, BaseModel):
        for key in value.__pydantic_extra__ or {}:
            yield _join(path, key)
        for name, info in type(value).model_fields.items():
            yield from _extra_keys(getattr(value, name), _join(path, info.alias or name))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _extra_keys(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _extra_keys(item, _join(path, str(key)))


def _schema_problems(error: ValidationError, event_type: object) -> list[str]:
    """One line per plain error; one line per union that no variant matched, listing each variant's reason."""
    plain: list[str] = []
    unions: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        if item["type"] == "union_tag_invalid" and not item["loc"]:
            plain.append(f"unknown event type {event_type!r}")
            continue
        loc = list(item["loc"])
        if loc and loc[0] == event_type:
            loc = loc[1:]  # the discriminator tag, not a key of the event
        got = item["input"]
        detail = item["msg"] if isinstance(got, dict | list) else f"{item['msg']} (got {_short(got)})"
        # pydantic names the tried variant of a plain Union by its class name (CamelCase, unlike keys).
        branch = next((i for i, key in enumerate(loc) if isinstance(key, str) and key[:1].isupper()), None)
        if branch is None:
            plain.append(f"schema: {_location(loc) or '<event>'}: {detail}")
        else:
            unions.setdefault(_location(loc[:branch]), []).append(f"{_location(loc[branch:])}: {detail}")
    return plain + [f"schema: {where}: matches no variant ({'; '.join(why)})" for where, why in unions.items()]


def _short(value: object, limit: int = 80) -> str:
    # Offending values can be whole base64 audio chunks; a prefix identifies them well enough.
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


class EventValidator:
    """Validates single server events of one dialect against the openai SDK types."""

    def __init__(self, dialect: Dialect, allowed_extras: Iterable[str] = DEFAULT_ALLOWED_EXTRAS) -> None:
        if dialect not in _UNIONS:
            raise ValueError(f"dialect must be 'ga' or 'beta', not {dialect!r}")
        self.dialect = dialect
        self._adapter = _adapter(dialect)
        self._foreign = _foreign_types(dialect)
        self._allowed = [_extra_pattern(pattern) for pattern in allowed_extras]

    def validate_event(self, event: dict[str, Any]) -> list[str]:
        """Schema, extra keys and event_id shape of one event; an empty list means it conforms."""
        if not isinstance(event, dict):
            return [f"event is not a JSON object: {event!r}"]
        event_type = event.get("type")
        label = event_type if isinstance(event_type, str) else "<no type>"
        if isinstance(event_type, str) and event_type in self._foreign:
            # Checked before the schema: the SDK knows the GA legacy name, and for the others its
            # "unknown tag" error would hide that the peer is speaking the other dialect.
            return [f"{label}: not a {self.dialect} event name (belongs to the other dialect)"]
        try:
            model = self._adapter.validate_python(event, strict=True)
        except ValidationError as error:
            problems = _schema_problems(error, event_type)
        else:
            problems = [f"extra key {path!r}" for path in _extra_keys(model) if not self._is_allowed(path)]
        event_id = event.get("event_id")
        if event_type != _WITHOUT_EVENT_ID and isinstance(event_id, str) and not _is_event_id(event_id):
            problems.append(f"event_id {event_id!r} does not look like 'event_<id>'")
        return [f"{label}: {problem}" for problem in problems]

    def _is_allowed(self, path: str) -> bool:
        bare = re.sub(r"\[\d+\]", "", path)
        return any(pattern.fullmatch(bare) for pattern in self._allowed)


def _is_event_id(value: str) -> bool:
    return value.startswith("event_") and len(value) > len("event_")


@dataclass
class _Part:
    """A content part between response.content_part.added and .done."""

    part_type: object
    done: bool = False
    text: dict[str, str] = field(default_factory=lambda: {"text": "", "transcript": ""})
    closed: set[str] = field(default_factory=set)  # streams whose *.done has arrived


@dataclass
class _Item:
    """An output item between response.output_item.added and .done."""

    item_id: object
    item_type: object
    call_id: object
    done: bool = False
    parts: dict[object, _Part] = field(default_factory=dict)
    arguments: str = ""
    arguments_done: bool = False


@dataclass
class _Response:
    """A response between response.created and response.done."""

    pcm16: bool  # 16-bit PCM output: every audio delta must hold whole samples
    items: dict[object, _Item] = field(default_factory=dict)


class _StreamChecker:
    def __init__(
        self,
        dialect: Dialect,
        client_events: list[dict[str, Any]] | None,
        known_item_ids: Iterable[str],
        allow_open_responses: bool,
    ) -> None:
        self.dialect = dialect
        self.client_events = client_events
        self.allow_open_responses = allow_open_responses
        self.problems: list[str] = []
        self.where = ""
        self.index = 0
        self.event_ids: set[str] = set()
        self.session: dict[str, Any] = {}
        self.open: dict[object, _Response] = {}
        self.finished: set[object] = set()
        self.items_seen: set[object] = set(known_item_ids)
        for client_event in client_events or ():
            if isinstance(client_event, dict) and client_event.get("type") == "conversation.item.create":
                self.items_seen.add(_dig(client_event, "item", "id"))
        self.items_seen.discard(None)
        self.items_awaiting_done: dict[object, int] = {}  # GA conversation.item.added -> its position
        self.session_updated_count = 0
        self.error_event_ids: list[object] = []
        self.handlers = {
            "session.created": self.on_session,
            "session.updated": self.on_session,
            "input_audio_buffer.timeout_triggered": self.on_timeout_triggered,
            "input_audio_buffer.committed": self.on_committed,
            "conversation.item.added": self.on_item_added,
            "conversation.item.done": self.on_item_done,
            "conversation.item.created": self.on_item_created,
            "response.created": self.on_response_created,
            "response.done": self.on_response_done,
            "response.output_item.added": self.on_output_item_added,
            "response.output_item.done": self.on_output_item_done,
            "response.content_part.added": self.on_content_part_added,
            "response.content_part.done": self.on_content_part_done,
            "response.function_call_arguments.delta": self.on_arguments_delta,
            "response.function_call_arguments.done": self.on_arguments_done,
            "output_audio_buffer.started": self.on_output_audio_buffer,
            "output_audio_buffer.stopped": self.on_output_audio_buffer,
            "output_audio_buffer.cleared": self.on_output_audio_buffer,
            "error": self.on_error,
        }
        self.handlers.update(dict.fromkeys(_DELTA_STREAMS, self.on_stream_delta))
        self.handlers.update(dict.fromkeys(_DONE_STREAMS, self.on_stream_done))

    def report(self, message: str) -> None:
        self.problems.append(f"{self.where}: {message}")

    def run(self, events: list[dict[str, Any]]) -> list[str]:
        if not events:
            self.where = "start of stream"
            self.report("stream is empty; the first event must be session.created")
        for index, event in enumerate(events):
            event_type = event.get("type") if isinstance(event, dict) else None
            self.index, self.where = index, f"event #{index} {event_type}"
            if not isinstance(event_type, str):
                self.report("event has no string 'type'")
                continue
            try:
                self.check(event)
            except Exception as error:  # a malformed event must become a report, not abort the whole check
                self.report(f"checker could not process this event: {error!r}")
        self.where = "end of stream"
        self.finish()
        return self.problems

    def check(self, event: dict[str, Any]) -> None:
        event_type = event["type"]
        event_id = event.get("event_id")
        if isinstance(event_id, str):
            if event_id in self.event_ids:
                self.report(f"event_id {event_id!r} was already used earlier in the stream")
            self.event_ids.add(event_id)
        if self.index == 0 and event_type != "session.created":
            self.report("the first server event must be session.created")
        elif self.index > 0 and event_type == "session.created":
            self.report("session.created may only be the first event")
        handler = self.handlers.get(event_type)
        if handler is not None:
            handler(event)
        elif event_type.startswith("response.") and "response_id" in event:
            self.open_response(event)  # e.g. MCP events: only the response reference is checked

    # --- session -------------------------------------------------------------------------------

    def on_session(self, event: dict[str, Any]) -> None:
        session = event.get("session")
        if event["type"] == "session.updated":
            self.session_updated_count += 1
        if not isinstance(session, dict):
            return  # a schema problem, reported by validate_event
        self.session = session
        if self.dialect == "ga" and session.get("type") == "transcription":
            return  # transcription sessions have their own, smaller shape
        missing = [key for key in _SESSION_KEYS[self.dialect] if key not in session]
        if missing:
            self.report(f"session is not the full effective session; missing {missing}")
        turn_detection = _dig(session, "audio", "input", "turn_detection")
        if self.dialect == "ga" and isinstance(turn_detection, dict):
            # openai-agents decides whether to send its own response.cancel from this echo (§3.5).
            for key in ("create_response", "interrupt_response"):
                if key not in turn_detection:
                    self.report(f"session.audio.input.turn_detection does not echo {key!r}")

    def on_timeout_triggered(self, event: dict[str, Any]) -> None:
        if not _dig(self.session, "audio", "input", "turn_detection", "idle_timeout_ms"):
            self.report("timeout_triggered although the session has no turn_detection.idle_timeout_ms")

    def on_error(self, event: dict[str, Any]) -> None:
        self.error_event_ids.append(_dig(event, "error", "event_id"))

    # --- conversation items --------------------------------------------------------------------

    def check_previous_item(self, event: dict[str, Any]) -> None:
        previous = event.get("previous_item_id")
        if previous is not None and previous not in self.items_seen:
            self.report(f"previous_item_id {previous!r} names no item seen earlier")

    def on_committed(self, event: dict[str, Any]) -> None:
        self.check_previous_item(event)
        self.items_seen.add(event.get("item_id"))

    def on_item_created(self, event: dict[str, Any]) -> None:
        self.check_previous_item(event)
        self.items_seen.add(_dig(event, "item", "id"))

    def on_item_added(self, event: dict[str, Any]) -> None:
        self.check_previous_item(event)
        item_id = _dig(event, "item", "id")
        if item_id in self.items_awaiting_done:
            self.report(f"conversation.item.added for {item_id!r} again before its conversation.item.done")
        self.items_awaiting_done[item_id] = self.index
        self.items_seen.add(item_id)

    def on_item_done(self, event: dict[str, Any]) -> None:
        item_id = _dig(event, "item", "id")
        if self.items_awaiting_done.pop(item_id, None) is None:
            self.report(f"conversation.item.done for {item_id!r} without an earlier conversation.item.added")

    # --- responses -----------------------------------------------------------------------------

    def open_response(self, event: dict[str, Any]) -> _Response | None:
        """The open response the event refers to by response_id, or None after reporting why not."""
        response_id = event.get("response_id")
        state = self.open.get(response_id)
        if state is None:
            if response_id in self.finished:
                self.report(f"response_id {response_id!r} refers to a response that already had response.done")
            else:
                self.report(f"response_id {response_id!r} refers to no response.created")
        return state

    def check_response_object(self, response: dict[str, Any]) -> None:
        missing = [key for key in _RESPONSE_KEYS if key not in response]
        if missing:
            self.report(f"response object lacks {missing}")

    def pcm16_output(self, response: dict[str, Any]) -> bool:
        if self.dialect == "ga":
            path = ("audio", "output", "format", "type")
            fmt = _dig(response, *path) or _dig(self.session, *path)
            return fmt in (None, "audio/pcm")
        fmt = response.get("output_audio_format") or self.session.get("output_audio_format")
        return fmt in (None, "pcm16")

    def on_response_created(self, event: dict[str, Any]) -> None:
        response = event.get("response")
        if not isinstance(response, dict):
            return
        response_id = response.get("id")
        self.check_response_object(response)
        if response.get("status") != "in_progress":
            self.report(f"response.created status is {response.get('status')!r}, expected 'in_progress'")
        if response.get("usage") is not None:
            self.report("response.created usage must be null")
        if not isinstance(response_id, str):
            self.report("response.created has no response id")
        elif response_id in self.open or response_id in self.finished:
            self.report(f"response id {response_id!r} was already created")
        else:
            self.open[response_id] = _Response(pcm16=self.pcm16_output(response))

    def on_response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response")
        if not isinstance(response, dict):
            return
        response_id = response.get("id")
        self.check_response_object(response)
        if response.get("status") not in _FINAL_STATUSES:
            self.report(f"response.done status {response.get('status')!r} is not a final status")
        usage = response.get("usage")
        if not isinstance(usage, dict):
            self.report("response.done usage is null; clients compute metrics from it")
        else:
            missing = [key for key in _USAGE_KEYS if usage.get(key) is None]
            if missing:
                self.report(f"response.done usage is not complete; missing {missing}")
        for i, item in enumerate(response.get("output") or []):
            for j, part in enumerate(_dig(item, "content") or []):
                if isinstance(part, dict) and part.get("audio"):
                    self.report(f"response.output[{i}].content[{j}] carries audio bytes")
        state = self.open.pop(response_id, None)
        if state is None:
            if response_id in self.finished:
                self.report(f"second response.done for {response_id!r}")
            else:
                self.report(f"response.done for {response_id!r} without a response.created")
            return
        self.finished.add(response_id)
        for output_index, item in state.items.items():
            if not item.done:
                self.report(
                    f"output item {item.item_id!r} (output_index {output_index}) has no "
                    "response.output_item.done before response.done"
                )
            for content_index, part in item.parts.items():
                if not part.done:
                    self.report(
                        f"content part {content_index} of item {item.item_id!r} has no "
                        "response.content_part.done before response.done"
                    )

    def on_output_audio_buffer(self, event: dict[str, Any]) -> None:
        # WebRTC playback events may trail response.done, so only require that the response existed.
        response_id = event.get("response_id")
        if response_id not in self.open and response_id not in self.finished:
            self.report(f"response_id {response_id!r} refers to no response.created")

    # --- output items and content parts --------------------------------------------------------

    def output_item(self, event: dict[str, Any], item_id: object) -> _Item | None:
        """The open output item at event.output_index, which must have item_id; else None after reporting."""
        state = self.open_response(event)
        if state is None:
            return None
        output_index = event.get("output_index")
        item = state.items.get(output_index)
        if item is None:
            self.report(f"no response.output_item.added at output_index {output_index}")
            return None
        if item.item_id != item_id:
            self.report(f"item id {item_id!r} differs from {item.item_id!r} added at output_index {output_index}")
            return None
        if item.done:
            self.report(f"item {item_id!r} already had response.output_item.done")
            return None
        return item

    def content_part(self, event: dict[str, Any]) -> _Part | None:
        """The open content part the event addresses; else None after reporting."""
        item = self.output_item(event, event.get("item_id"))
        if item is None:
            return None
        content_index = event.get("content_index")
        part = item.parts.get(content_index)
        if part is None:
            self.report(f"no response.content_part.added for item {item.item_id!r} content_index {content_index}")
            return None
        if part.done:
            self.report(f"content part {content_index} of item {item.item_id!r} already had response.content_part.done")
            return None
        return part

    def on_output_item_added(self, event: dict[str, Any]) -> None:
        state = self.open_response(event)
        if state is None:
            return
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        output_index = event.get("output_index")
        if output_index in state.items:
            self.report(f"output_index {output_index} was already added")
            return
        if output_index != len(state.items):
            self.report(f"output_index {output_index} skips ahead; expected {len(state.items)}")
        state.items[output_index] = _Item(item.get("id"), item.get("type"), item.get("call_id"))
        self.items_seen.add(item.get("id"))

    def on_output_item_done(self, event: dict[str, Any]) -> None:
        item = self.output_item(event, _dig(event, "item", "id"))
        if item is None:
            return
        for content_index, part in item.parts.items():
            if not part.done:
                self.report(f"response.output_item.done while content part {content_index} is still open")
        item.done = True

    def on_content_part_added(self, event: dict[str, Any]) -> None:
        item = self.output_item(event, event.get("item_id"))
        if item is None:
            return
        content_index = event.get("content_index")
        if content_index in item.parts:
            self.report(f"content_index {content_index} of item {item.item_id!r} was already added")
            return
        if content_index != len(item.parts):
            self.report(f"content_index {content_index} skips ahead; expected {len(item.parts)}")
        item.parts[content_index] = _Part(_dig(event, "part", "type"))

    def on_content_part_done(self, event: dict[str, Any]) -> None:
        part = self.content_part(event)
        if part is None:
            return
        final = event.get("part") if isinstance(event.get("part"), dict) else {}
        if final.get("type") != part.part_type:
            self.report(f"part type {final.get('type')!r} differs from {part.part_type!r} at content_part.added")
        stream = "text" if part.part_type == "text" else "transcript"
        if (final.get(stream) or "") != part.text[stream]:
            self.report(f"part.{stream} {final.get(stream)!r} != concatenated deltas {part.text[stream]!r}")
        part.done = True

    def on_stream_delta(self, event: dict[str, Any]) -> None:
        stream = _DELTA_STREAMS[event["type"]]
        part = self.content_part(event)
        if part is None or not self.stream_fits(part, stream):
            return
        if stream in part.closed:
            self.report(f"{stream} delta after the {stream} stream's .done")
        delta = event.get("delta")
        if stream == "audio":
            self.check_audio(delta, self.open[event.get("response_id")].pcm16)
        elif isinstance(delta, str):
            part.text[stream] += delta

    def on_stream_done(self, event: dict[str, Any]) -> None:
        stream, key = _DONE_STREAMS[event["type"]]
        part = self.content_part(event)
        if part is None or not self.stream_fits(part, stream):
            return
        if stream in part.closed:
            self.report(f"second .done for the {stream} stream")
        part.closed.add(stream)
        if key is not None and event.get(key) != part.text[stream]:
            self.report(f"{key} {event.get(key)!r} != concatenated deltas {part.text[stream]!r}")

    def stream_fits(self, part: _Part, stream: str) -> bool:
        if _PART_TYPE[stream] == part.part_type:
            return True
        self.report(f"{stream} event in a content part of type {part.part_type!r}")
        return False

    def check_audio(self, delta: object, pcm16: bool) -> None:
        try:
            audio = base64.b64decode(delta, validate=True)
        except (TypeError, ValueError):
            self.report("audio delta is not valid base64")
            return
        if pcm16 and len(audio) % 2:
            self.report(f"audio delta holds {len(audio)} bytes, not whole 16-bit PCM samples")

    def on_arguments_delta(self, event: dict[str, Any]) -> None:
        item = self.function_call(event)
        if item is None:
            return
        if item.arguments_done:
            self.report("function_call_arguments.delta after function_call_arguments.done")
        if isinstance(event.get("delta"), str):
            item.arguments += event["delta"]

    def on_arguments_done(self, event: dict[str, Any]) -> None:
        item = self.function_call(event)
        if item is None:
            return
        if item.arguments_done:
            self.report("second function_call_arguments.done")
        item.arguments_done = True
        if event.get("arguments") != item.arguments:
            self.report(f"arguments {event.get('arguments')!r} != concatenated deltas {item.arguments!r}")

    def function_call(self, event: dict[str, Any]) -> _Item | None:
        item = self.output_item(event, event.get("item_id"))
        if item is None:
            return None
        if item.item_type != "function_call":
            self.report(f"function call arguments for item {item.item_id!r} of type {item.item_type!r}")
            return None
        if event.get("call_id") != item.call_id:
            self.report(f"call_id {event.get('call_id')!r} differs from the item's {item.call_id!r}")
        return item

    # --- end of stream -------------------------------------------------------------------------

    def finish(self) -> None:
        open_item_ids = {item.item_id for state in self.open.values() for item in state.items.values()}
        if not self.allow_open_responses:
            for response_id in self.open:
                self.report(f"response {response_id!r} has no response.done")
        for item_id, position in self.items_awaiting_done.items():
            if not (self.allow_open_responses and item_id in open_item_ids):
                self.report(
                    f"conversation.item.added for {item_id!r} (event #{position}) has no conversation.item.done"
                )
        if self.client_events is not None:
            self.check_session_updates(self.client_events)

    def check_session_updates(self, client_events: list[dict[str, Any]]) -> None:
        updates = [e for e in client_events if isinstance(e, dict) and e.get("type") == "session.update"]
        update_ids = {e.get("event_id") for e in updates if isinstance(e.get("event_id"), str)}
        rejected = sum(1 for event_id in self.error_event_ids if event_id in update_ids)
        if self.session_updated_count + rejected != len(updates):
            self.report(
                f"{len(updates)} client session.update event(s) but {self.session_updated_count} "
                f"session.updated and {rejected} error(s) naming a session.update"
            )


def check_stream(
    events: list[dict[str, Any]],
    dialect: Dialect,
    client_events: list[dict[str, Any]] | None = None,
    known_item_ids: Iterable[str] = (),
    allow_open_responses: bool = False,
) -> list[str]:
    """Semantic checks over server events in arrival order; an empty list means the stream conforms.

    client_events: the client events sent on the connection, to pair session.update with its answer.
    known_item_ids: conversation items that exist before the stream starts (previous_item_id targets).
    allow_open_responses: accept a stream cut off while a response is still in progress.
    """
    return _StreamChecker(dialect, client_events, known_item_ids, allow_open_responses).run(events)


def assert_conformant(
    events: list[dict[str, Any]],
    dialect: Dialect,
    client_events: list[dict[str, Any]] | None = None,
    known_item_ids: Iterable[str] = (),
    allow_open_responses: bool = False,
    extra_allowed: Iterable[str] = (),
) -> None:
    """Raise AssertionError listing every per-event and stream problem of the server events.

    extra_allowed: keys beyond DEFAULT_ALLOWED_EXTRAS that this stream may carry (a Parley extension the
    client asked for, such as ``session.knowledge``).
    """
    validator = EventValidator(dialect, (*DEFAULT_ALLOWED_EXTRAS, *extra_allowed))
    problems = [
        f"event #{index}: {problem}"
        for index, event in enumerate(events)
        for problem in validator.validate_event(event)
    ]
    problems += check_stream(events, dialect, client_events, known_item_ids, allow_open_responses)
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise AssertionError(f"{len(problems)} conformance problem(s) in the {dialect} stream:\n{listing}")
