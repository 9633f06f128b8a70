"""Bad input: every malformed, mistyped or out-of-range client event gets one ``error`` event and the session
carries on; a client that vanishes mid-response frees what it held; nothing crashes the server.

Each case checks the error's type, code, ``param`` and the client's ``event_id`` (when the frame could be
parsed far enough to have one), then proves the same session still works: a ``session.update`` answered by
``session.updated`` and a response that completes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.client import RecordingConnection, connect, response_text, user_text
from tests.support.server import RunningServer, running_server

EVENT_ID = "evt_bad_input_42"
SMALL_LIMIT = 65536  # bytes per frame on the small-frames server
DIALECTS = ("ga", "beta")


@pytest.fixture(scope="module")
def small_server() -> Iterator[RunningServer]:
    """A server of its own: a small frame limit, and metrics no other module's sessions touch."""
    with running_server("small-frames", env={"PARLEY_MAX_EVENT_BYTES": str(SMALL_LIMIT)}) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
def no_server_tracebacks(server: RunningServer, small_server: RunningServer) -> Iterator[None]:
    """Bad input is the client's problem: the servers log no exception for any of it."""
    servers = (server, small_server)
    offsets = [len(running.log()) for running in servers]
    yield
    for running, offset in zip(servers, offsets, strict=True):
        assert "Traceback" not in running.log()[offset:], running.log()[offset:][-3000:]


# Helpers ------------------------------------------------------------------------------------------------


async def send_bad(rc: RecordingConnection, event: dict[str, Any]) -> None:
    """Send an event the SDK's types would refuse to build; recorded so session.update pairing is checked."""
    rc.sent.append(event)
    await rc.send_raw(json.dumps(event))


async def expect_error(
    rc: RecordingConnection, code: str, param: str | None, event_id: str | None = EVENT_ID
) -> dict[str, Any]:
    """The very next server event is the error, and it names the right code, param and client event."""
    event = await rc.next(timeout=30)
    assert event["type"] == "error", event
    error = event["error"]
    assert error["type"] == "invalid_request_error", error
    assert error["code"] == code, error
    assert error["param"] == param, error
    assert error["event_id"] == event_id, error
    assert isinstance(error["message"], str) and error["message"], error
    return error


async def wait_item_added(rc: RecordingConnection, item_id: str) -> None:
    final = "conversation.item.done" if rc.dialect == "ga" else "conversation.item.created"
    while True:
        event = await rc.next()
        assert event["type"] != "error", event
        if event["type"] == final and event["item"]["id"] == item_id:
            return


async def add_user_item(rc: RecordingConnection, item_id: str, text: str = "Hello.") -> None:
    await rc.send(user_text(text, item_id))
    await wait_item_added(rc, item_id)


def minimal_session(dialect: str, **fields: Any) -> dict[str, Any]:
    return {"type": "realtime", **fields} if dialect == "ga" else fields


INSTRUCTIONS = "You are a helpful assistant. Reply with a single short sentence."
QUESTION = "What is the capital of France?"  # the small test model answers this briefly and stops


async def assert_session_works(rc: RecordingConnection) -> None:
    """The session still answers updates, takes items and completes a response, with no error on the way.

    The response runs in the conversation (so a stale active response would refuse it) but reads only the
    question: a long or half-cancelled conversation would tempt the small model to ramble.
    """
    start = len(rc.events)
    update = {"type": "session.update", "event_id": "evt_alive_session", "session": minimal_session(rc.dialect)}
    update["session"]["instructions"] = INSTRUCTIONS
    await rc.send(update)
    updated = await rc.until("session.updated")
    assert updated["session"]["instructions"] == INSTRUCTIONS
    question_id = f"item_alive_{len(rc.events)}"
    await add_user_item(rc, question_id, QUESTION)
    limit = "max_output_tokens" if rc.dialect == "ga" else "max_response_output_tokens"
    response = {"input": [{"type": "item_reference", "id": question_id}], limit: 64}
    await rc.send({"type": "response.create", "event_id": "evt_alive_response", "response": response})
    done = (await rc.until("response.done"))["response"]
    # The small model sometimes runs past the cap: a response stopped by it is still a working session.
    assert done["status"] == "completed" or done["status_details"] == {
        "type": "incomplete",
        "reason": "max_output_tokens",
    }, done
    assert response_text(rc.events, done["id"]).strip()
    assert not [event for event in rc.events[start:] if event["type"] == "error"]
    rc.assert_conformant()


def metric(server: RunningServer, name: str) -> float:
    text = httpx.get(f"{server.http_url}/metrics", timeout=5).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


async def wait_metrics_idle(server: RunningServer, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        sessions = metric(server, "parley_active_sessions")
        responses = metric(server, "parley_active_responses")
        if sessions == 0 and responses == 0:
            return
        assert asyncio.get_running_loop().time() < deadline, f"sessions={sessions} responses={responses}"
        await asyncio.sleep(0.1)


def cases(*rows: tuple[Any, ...], dialects: tuple[str, ...] = DIALECTS) -> list[Any]:
    """Rows of (id, *values), one test per dialect."""
    return [pytest.param(dialect, *values, id=f"{dialect}-{name}") for dialect in dialects for name, *values in rows]


# Frames that are not events -----------------------------------------------------------------------------

NOT_JSON = [
    '{"type": "session.update"',
    "hello",
    "",
    '{"type": "response.create",}',
    "{'type': 'response.create'}",
    # Valid for Python's parser, not JSON; echoed back they break clients' parsers.
    '{"type": "session.update", "event_id": "evt_nan", "session": {"tracing": {"x": NaN}}}',
    '{"type": "response.create", "event_id": "evt_inf", "response": {"metadata": {"a": Infinity}}}',
    # A lone surrogate parses but can never be written back out as UTF-8.
    '{"type": "session.update", "event_id": "evt_sur", "session": {"instructions": "\\ud800"}}',
    '{"type": "scooby.\\udfff", "event_id": "evt_sur2"}',
    # Deeper nesting than the parser goes, and an integer past Python's digit limit.
    "[" * 100_000,
    '{"type": "conversation.item.truncate", "item_id": "x", "content_index": 1' + "0" * 5000 + "}",
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("frame", NOT_JSON, ids=[f"not-json-{i}" for i in range(len(NOT_JSON))])
async def test_not_json(server: RunningServer, dialect: str, frame: str) -> None:
    async with connect(server, dialect) as rc:
        await rc.send_raw(frame)
        error = await expect_error(rc, "invalid_json", None, None)
        assert "\ud800" not in error["message"]
        await assert_session_works(rc)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("frame", ["[]", '[{"type": "response.create"}]', '"response.create"', "42", "null", "true"])
async def test_json_that_is_not_an_object(server: RunningServer, dialect: str, frame: str) -> None:
    async with connect(server, dialect) as rc:
        await rc.send_raw(frame)
        await expect_error(rc, "invalid_json", None, None)
        await assert_session_works(rc)


@pytest.mark.parametrize(
    ("dialect", "event", "code"),
    cases(
        ("missing", {"event_id": EVENT_ID}, "missing_required_parameter"),
        ("null", {"type": None, "event_id": EVENT_ID}, "missing_required_parameter"),
        ("unknown", {"type": "scooby.dooby.doo", "event_id": EVENT_ID}, "invalid_value"),
        ("empty", {"type": "", "event_id": EVENT_ID}, "invalid_value"),
        ("number", {"type": 5, "event_id": EVENT_ID}, "invalid_value"),
        ("list", {"type": ["session.update"], "event_id": EVENT_ID}, "invalid_value"),
        ("object", {"type": {"name": "session.update"}, "event_id": EVENT_ID}, "invalid_value"),
        ("server-event", {"type": "session.updated", "event_id": EVENT_ID, "session": {}}, "invalid_value"),
        ("beta-transcription", {"type": "transcription_session.update", "event_id": EVENT_ID}, "invalid_value"),
    ),
)
async def test_missing_or_unknown_type(server: RunningServer, dialect: str, event: dict[str, Any], code: str) -> None:
    async with connect(server, dialect) as rc:
        await send_bad(rc, event)
        error = await expect_error(rc, code, "type")
        if code == "invalid_value":
            assert "session.update" in error["message"]  # lists what is supported
        await assert_session_works(rc)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_event_id_that_is_not_a_string_is_not_echoed(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as rc:
        await send_bad(rc, {"type": "scooby.dooby.doo", "event_id": 42})
        await expect_error(rc, "invalid_value", "type", None)
        await assert_session_works(rc)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("payload", [b'{"type": "session.update", "session": {}}', b"\x00\xff\xfe", b""])
async def test_binary_frame(server: RunningServer, dialect: str, payload: bytes) -> None:
    async with connect(server, dialect) as rc:
        await rc.connection._connection.send(payload)
        await expect_error(rc, "invalid_frame", None, None)
        await assert_session_works(rc)


# Frame size ---------------------------------------------------------------------------------------------


def append_of(base64_chars: int, event_id_first: bool) -> str:
    audio = "A" * base64_chars
    if event_id_first:
        return json.dumps({"event_id": EVENT_ID, "type": "input_audio_buffer.append", "audio": audio})
    return json.dumps({"type": "input_audio_buffer.append", "audio": audio, "event_id": EVENT_ID})


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("event_id_first", [True, False], ids=["event-id-first", "event-id-last"])
async def test_oversized_frame(small_server: RunningServer, dialect: str, event_id_first: bool) -> None:
    async with connect(small_server, dialect) as rc:
        await rc.send_raw(append_of(SMALL_LIMIT + 4000, event_id_first))
        error = await expect_error(rc, "event_too_large", None)
        assert str(SMALL_LIMIT) in error["message"]
        # Nothing of the rejected frame reached the buffer.
        await send_bad(rc, {"type": "input_audio_buffer.commit", "event_id": EVENT_ID})
        await expect_error(rc, "input_audio_buffer_commit_empty", None)
        await assert_session_works(rc)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_oversized_frame_counts_bytes_not_characters(small_server: RunningServer, dialect: str) -> None:
    """40,000 characters fit the limit; their 80,000 bytes of UTF-8 do not."""
    async with connect(small_server, dialect) as rc:
        session = minimal_session(dialect, instructions="é" * 40_000)
        await rc.send_raw(
            json.dumps({"type": "session.update", "session": session, "event_id": EVENT_ID}, ensure_ascii=False)
        )
        await expect_error(rc, "event_too_large", None)
        await assert_session_works(rc)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_frame_just_under_the_limit_is_accepted(small_server: RunningServer, dialect: str) -> None:
    async with connect(small_server, dialect) as rc:
        frame = append_of(SMALL_LIMIT - 200, event_id_first=False)
        assert len(frame.encode()) <= SMALL_LIMIT
        await rc.send_raw(frame)
        await rc.send({"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
        committed = await rc.next()
        assert committed["type"] == "input_audio_buffer.committed", committed
        await assert_session_works(rc)


async def test_frame_beyond_the_transport_limit_closes_only_that_connection(small_server: RunningServer) -> None:
    """Past twice the event limit the WebSocket layer refuses to buffer the frame (1009); the server lives on."""
    async with connect(small_server, "ga") as rc:
        await rc.send_raw(append_of(3 * SMALL_LIMIT, event_id_first=False))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await rc.next(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    await wait_metrics_idle(small_server)
    async with connect(small_server, "ga") as rc:
        await assert_session_works(rc)


# input_audio_buffer ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "event", "code", "param"),
    cases(
        ("bad-base64", {"type": "input_audio_buffer.append", "audio": "not base64!!"}, "invalid_value", "audio"),
        ("bad-padding", {"type": "input_audio_buffer.append", "audio": "AAA"}, "invalid_value", "audio"),
        (
            "big-bad-base64",
            {"type": "input_audio_buffer.append", "audio": "A" * 300_000 + "*"},
            "invalid_value",
            "audio",
        ),
        ("missing-audio", {"type": "input_audio_buffer.append"}, "missing_required_parameter", "audio"),
        ("audio-number", {"type": "input_audio_buffer.append", "audio": 5}, "invalid_type", "audio"),
        ("audio-list", {"type": "input_audio_buffer.append", "audio": [1, 2]}, "invalid_type", "audio"),
    ),
)
async def test_bad_audio_append(
    server: RunningServer, dialect: str, event: dict[str, Any], code: str, param: str
) -> None:
    async with connect(server, dialect) as rc:
        await send_bad(rc, {**event, "event_id": EVENT_ID})
        await expect_error(rc, code, param)
        # A rejected append adds nothing to the buffer.
        await send_bad(rc, {"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
        await expect_error(rc, "input_audio_buffer_commit_empty", None, "evt_commit")
        await assert_session_works(rc)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("milliseconds", [0, 50, 99])
async def test_commit_too_little_audio(server: RunningServer, dialect: str, milliseconds: int) -> None:
    async with connect(server, dialect) as rc:
        if milliseconds:
            audio = base64.b64encode(bytes(48 * milliseconds)).decode()  # pcm16 at 24 kHz: 48 bytes a ms
            await rc.send({"type": "input_audio_buffer.append", "audio": audio})
        await send_bad(rc, {"type": "input_audio_buffer.commit", "event_id": EVENT_ID})
        error = await expect_error(rc, "input_audio_buffer_commit_empty", None)
        assert f"{milliseconds:.2f}ms" in error["message"]
        # The short audio is kept: topped up to 100 ms it commits.
        audio = base64.b64encode(bytes(48 * (100 - milliseconds))).decode()
        await rc.send({"type": "input_audio_buffer.append", "audio": audio})
        await rc.send({"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
        committed = await rc.next()
        assert committed["type"] == "input_audio_buffer.committed", committed
        await assert_session_works(rc)


# session.update -----------------------------------------------------------------------------------------

GA_SESSION_CASES = [
    ("instructions-number", {"instructions": 5}, "invalid_type", "session.instructions"),
    ("instructions-object", {"instructions": {"text": "hi"}}, "invalid_type", "session.instructions"),
    (
        "threshold-2",
        {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}},
        "invalid_value",
        "session.audio.input.turn_detection.threshold",
    ),
    (
        "vad-unknown",
        {"audio": {"input": {"turn_detection": {"type": "magic_vad"}}}},
        "invalid_value",
        "session.audio.input.turn_detection.type",
    ),
    (
        "eagerness",
        {"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "eager"}}}},
        "invalid_value",
        "session.audio.input.turn_detection.eagerness",
    ),
    ("max-tokens-0", {"max_output_tokens": 0}, "invalid_value", "session.max_output_tokens"),
    ("max-tokens-5000", {"max_output_tokens": 5000}, "invalid_value", "session.max_output_tokens"),
    ("max-tokens-word", {"max_output_tokens": "infinite"}, "invalid_value", "session.max_output_tokens"),
    ("speed-9", {"audio": {"output": {"speed": 9}}}, "invalid_value", "session.audio.output.speed"),
    ("speed-0", {"audio": {"output": {"speed": 0}}}, "invalid_value", "session.audio.output.speed"),
    ("voice-number", {"audio": {"output": {"voice": 5}}}, "invalid_type", "session.audio.output.voice"),
    ("modality-video", {"output_modalities": ["video"]}, "invalid_value", "session.output_modalities[0]"),
    ("modality-both", {"output_modalities": ["text", "audio"]}, "invalid_value", "session.output_modalities"),
    ("modality-none", {"output_modalities": []}, "invalid_value", "session.output_modalities"),
    ("modality-string", {"output_modalities": "text"}, "invalid_type", "session.output_modalities"),
    (
        "format-mp3",
        {"audio": {"input": {"format": {"type": "audio/mp3"}}}},
        "invalid_value",
        "session.audio.input.format.type",
    ),
    (
        "format-rate",
        {"audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}},
        "invalid_value",
        "session.audio.output.format.rate",
    ),
    ("format-string", {"audio": {"output": {"format": "pcm16"}}}, "invalid_type", "session.audio.output.format"),
    ("tool-choice", {"tool_choice": "sometimes"}, "invalid_value", "session.tool_choice"),
    (
        "tool-choice-no-name",
        {"tool_choice": {"type": "function"}},
        "missing_required_parameter",
        "session.tool_choice.name",
    ),
    ("tool-no-name", {"tools": [{"type": "function"}]}, "missing_required_parameter", "session.tools[0].name"),
    (
        "tool-description",
        {"tools": [{"type": "function", "name": "f", "description": "x" * 1025}]},
        "invalid_value",
        "session.tools[0].description",
    ),
    ("type-transcription", {"type": "transcription"}, "invalid_value", "session.type"),
]

BETA_SESSION_CASES = [
    ("instructions-number", {"instructions": 5}, "invalid_type", "session.instructions"),
    (
        "threshold-2",
        {"turn_detection": {"type": "server_vad", "threshold": 2}},
        "invalid_value",
        "session.turn_detection.threshold",
    ),
    ("vad-unknown", {"turn_detection": {"type": "magic_vad"}}, "invalid_value", "session.turn_detection.type"),
    ("temperature-3", {"temperature": 3}, "invalid_value", "session.temperature"),
    ("temperature-0", {"temperature": 0}, "invalid_value", "session.temperature"),
    ("temperature-word", {"temperature": "hot"}, "invalid_type", "session.temperature"),
    ("max-tokens-0", {"max_response_output_tokens": 0}, "invalid_value", "session.max_response_output_tokens"),
    ("max-tokens-5000", {"max_response_output_tokens": 5000}, "invalid_value", "session.max_response_output_tokens"),
    ("speed-9", {"speed": 9}, "invalid_value", "session.speed"),
    ("modality-video", {"modalities": ["video"]}, "invalid_value", "session.modalities[0]"),
    ("modality-none", {"modalities": []}, "invalid_value", "session.modalities"),
    ("format-mp3", {"input_audio_format": "mp3"}, "invalid_value", "session.input_audio_format"),
    ("format-object", {"output_audio_format": {"type": "audio/pcm"}}, "invalid_value", "session.output_audio_format"),
    ("tool-no-name", {"tools": [{"type": "function"}]}, "missing_required_parameter", "session.tools[0].name"),
    ("tool-choice-number", {"tool_choice": 3}, "invalid_type", "session.tool_choice"),
]


@pytest.mark.parametrize(
    ("dialect", "session", "code", "param"),
    cases(*GA_SESSION_CASES, dialects=("ga",)) + cases(*BETA_SESSION_CASES, dialects=("beta",)),
)
async def test_bad_session_update(
    server: RunningServer, dialect: str, session: dict[str, Any], code: str, param: str
) -> None:
    async with connect(server, dialect) as rc:
        body = {**minimal_session(dialect), **session}
        await send_bad(rc, {"type": "session.update", "event_id": EVENT_ID, "session": body})
        await expect_error(rc, code, param)
        await assert_session_works(rc)


@pytest.mark.parametrize(
    ("dialect", "event", "code", "param"),
    cases(
        ("missing", {"type": "session.update"}, "missing_required_parameter", "session"),
        ("string", {"type": "session.update", "session": "fast please"}, "invalid_type", "session"),
        ("null", {"type": "session.update", "session": None}, "invalid_type", "session"),
    ),
)
async def test_session_update_without_a_session(
    server: RunningServer, dialect: str, event: dict[str, Any], code: str, param: str
) -> None:
    async with connect(server, dialect) as rc:
        await send_bad(rc, {**event, "event_id": EVENT_ID})
        await expect_error(rc, code, param)
        await assert_session_works(rc)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_rejected_session_update_changes_nothing(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as rc:
        before = rc.events[-1]["session"]  # the session as connect() left it
        if dialect == "ga":
            session = {"type": "realtime", "instructions": "CHANGED", "audio": {"output": {"speed": 9}}}
            param = "session.audio.output.speed"
        else:
            session = {"instructions": "CHANGED", "temperature": 3}
            param = "session.temperature"
        await send_bad(rc, {"type": "session.update", "event_id": EVENT_ID, "session": session})
        await expect_error(rc, "invalid_value", param)
        await rc.send({"type": "session.update", "event_id": "evt_noop", "session": minimal_session(dialect)})
        updated = await rc.next()
        assert updated["type"] == "session.updated", updated
        assert updated["session"] == before
        await assert_session_works(rc)


# conversation.item.create -------------------------------------------------------------------------------


def message(role: str, *parts: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": list(parts), **fields}


TEXT = {"type": "input_text", "text": "hi"}


def item_cases(dialect: str) -> list[tuple[Any, ...]]:
    assistant_text = "output_text" if dialect == "ga" else "text"
    return [
        ("missing-item", {}, "missing_required_parameter", "item"),
        ("item-string", {"item": "hello"}, "invalid_type", "item"),
        ("item-type", {"item": {"type": "bogus", "role": "user"}}, "invalid_value", "item.type"),
        ("item-no-type", {"item": {"role": "user", "content": [TEXT]}}, "missing_required_parameter", "item.type"),
        ("no-role", {"item": {"type": "message", "content": [TEXT]}}, "missing_required_parameter", "item.role"),
        ("bad-role", {"item": message("developer", TEXT)}, "invalid_value", "item.role"),
        ("no-content", {"item": {"type": "message", "role": "user"}}, "missing_required_parameter", "item.content"),
        ("empty-content", {"item": message("user")}, "missing_required_parameter", "item.content"),
        ("content-string", {"item": {**message("user"), "content": "hi"}}, "invalid_type", "item.content"),
        (
            "user-output-text",
            {"item": message("user", {"type": assistant_text, "text": "hi"})},
            "invalid_value",
            "item.content[0].type",
        ),
        (
            "assistant-input-text",
            {"item": message("assistant", TEXT)},
            "invalid_value",
            "item.content[0].type",
        ),
        (
            "system-audio",
            {"item": message("system", {"type": "input_audio", "audio": "AAAA"})},
            "invalid_value",
            "item.content[0].type",
        ),
        (
            "unknown-part",
            {"item": message("user", TEXT, {"type": "input_video", "url": "x"})},
            "invalid_value",
            "item.content[1].type",
        ),
        (
            "text-missing",
            {"item": message("user", {"type": "input_text"})},
            "missing_required_parameter",
            "item.content[0].text",
        ),
        (
            "text-number",
            {"item": message("user", {"type": "input_text", "text": 5})},
            "invalid_type",
            "item.content[0].text",
        ),
        (
            "audio-bad-base64",
            {"item": message("user", {"type": "input_audio", "audio": "%%% not base64 %%%"})},
            "invalid_value",
            "item.content[0].audio",
        ),
        (
            "audio-missing",
            {"item": message("user", {"type": "input_audio"})},
            "missing_required_parameter",
            "item.content[0].audio",
        ),
        (
            "image-url",
            {"item": message("user", {"type": "input_image", "image_url": "https://example.com/cat.png"})},
            "invalid_value",
            "item.content[0].image_url",
        ),
        ("id-too-long", {"item": message("user", TEXT, id="i" * 65)}, "invalid_value", "item.id"),
        ("id-empty", {"item": message("user", TEXT, id="")}, "invalid_value", "item.id"),
        (
            "call-no-name",
            {"item": {"type": "function_call", "call_id": "call_1", "arguments": "{}"}},
            "missing_required_parameter",
            "item.name",
        ),
        (
            "output-unknown-call",
            {"item": {"type": "function_call_output", "call_id": "call_nobody", "output": "42"}},
            "invalid_value",
            "item.call_id",
        ),
        (
            "output-no-call-id",
            {"item": {"type": "function_call_output", "output": "42"}},
            "missing_required_parameter",
            "item.call_id",
        ),
        (
            "output-no-output",
            {"item": {"type": "function_call_output", "call_id": "call_1"}},
            "missing_required_parameter",
            "item.output",
        ),
        (
            "unknown-previous",
            {"item": message("user", TEXT), "previous_item_id": "item_nowhere"},
            "item_not_found",
            "previous_item_id",
        ),
        ("previous-number", {"item": message("user", TEXT), "previous_item_id": 5}, "invalid_type", "previous_item_id"),
    ]


@pytest.mark.parametrize(
    ("dialect", "fields", "code", "param"),
    [
        pytest.param(dialect, fields, code, param, id=f"{dialect}-{name}")
        for dialect in DIALECTS
        for name, fields, code, param in item_cases(dialect)
    ],
)
async def test_bad_item_create(
    server: RunningServer, dialect: str, fields: dict[str, Any], code: str, param: str
) -> None:
    async with connect(server, dialect) as rc:
        await send_bad(rc, {"type": "conversation.item.create", "event_id": EVENT_ID, **fields})
        await expect_error(rc, code, param)
        await assert_session_works(rc)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_duplicate_item_id(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as rc:
        await add_user_item(rc, "item_dup_1", "first")
        await send_bad(rc, {"event_id": EVENT_ID, **user_text("second", "item_dup_1")})
        await expect_error(rc, "item_id_already_exists", "item.id")
        await rc.send({"type": "conversation.item.retrieve", "item_id": "item_dup_1"})
        retrieved = await rc.next()
        assert retrieved["type"] == "conversation.item.retrieved", retrieved
        assert retrieved["item"]["content"][0]["text"] == "first"
        await assert_session_works(rc)


# Retrieve, delete, truncate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "event", "code", "param"),
    cases(
        (
            "retrieve-unknown",
            {"type": "conversation.item.retrieve", "item_id": "item_nowhere"},
            "item_not_found",
            "item_id",
        ),
        (
            "delete-unknown",
            {"type": "conversation.item.delete", "item_id": "item_nowhere"},
            "item_not_found",
            "item_id",
        ),
        (
            "truncate-unknown",
            {"type": "conversation.item.truncate", "item_id": "item_nowhere", "content_index": 0, "audio_end_ms": 0},
            "item_not_found",
            "item_id",
        ),
        ("retrieve-missing", {"type": "conversation.item.retrieve"}, "missing_required_parameter", "item_id"),
        ("delete-number", {"type": "conversation.item.delete", "item_id": 7}, "invalid_type", "item_id"),
        ("delete-empty", {"type": "conversation.item.delete", "item_id": ""}, "invalid_value", "item_id"),
        (
            "truncate-missing-index",
            {"type": "conversation.item.truncate", "item_id": "item_user", "audio_end_ms": 0},
            "missing_required_parameter",
            "content_index",
        ),
        (
            "truncate-negative-ms",
            {"type": "conversation.item.truncate", "item_id": "item_user", "content_index": 0, "audio_end_ms": -5},
            "invalid_value",
            "audio_end_ms",
        ),
        (
            "truncate-user-item",
            {"type": "conversation.item.truncate", "item_id": "item_user", "content_index": 0, "audio_end_ms": 0},
            "invalid_value",
            "item_id",
        ),
    ),
)
async def test_bad_item_reference(
    server: RunningServer, dialect: str, event: dict[str, Any], code: str, param: str
) -> None:
    async with connect(server, dialect) as rc:
        await add_user_item(rc, "item_user")
        await send_bad(rc, {**event, "event_id": EVENT_ID})
        await expect_error(rc, code, param)
        await assert_session_works(rc)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_truncate_assistant_text_item(server: RunningServer, dialect: str) -> None:
    """Only audio can be truncated; a text reply (all this server speaks yet) is refused."""
    async with connect(server, dialect) as rc:
        await assert_session_works(rc)
        item_id = rc.of_type("response.done")[-1]["response"]["output"][0]["id"]
        truncate = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 0}
        await send_bad(rc, {**truncate, "event_id": EVENT_ID})
        await expect_error(rc, "invalid_value", "item_id")
        await assert_session_works(rc)


# Responses ----------------------------------------------------------------------------------------------


def response_cases(dialect: str) -> list[tuple[Any, ...]]:
    common = [
        ("conversation-bogus", {"conversation": "bogus"}, "invalid_value", "response.conversation"),
        (
            "reference-unknown",
            {"input": [{"type": "item_reference", "id": "item_nowhere"}]},
            "item_not_found",
            "response.input[0].id",
        ),
        (
            "reference-second-unknown",
            {
                "conversation": "none",
                "input": [
                    {"type": "item_reference", "id": "item_user"},
                    {"type": "item_reference", "id": "item_nowhere"},
                ],
            },
            "item_not_found",
            "response.input[1].id",
        ),
        ("response-string", "now", "invalid_type", "response"),
        ("instructions-number", {"instructions": 5}, "invalid_type", "response.instructions"),
        ("metadata-number", {"metadata": {"k": 5}}, "invalid_type", "response.metadata.k"),
    ]
    if dialect == "ga":
        return [
            *common,
            ("max-tokens-0", {"max_output_tokens": 0}, "invalid_value", "response.max_output_tokens"),
            ("max-tokens-5000", {"max_output_tokens": 5000}, "invalid_value", "response.max_output_tokens"),
            ("modality-both", {"output_modalities": ["text", "audio"]}, "invalid_value", "response.output_modalities"),
            ("modality-video", {"output_modalities": ["video"]}, "invalid_value", "response.output_modalities[0]"),
        ]
    return [
        *common,
        ("temperature-3", {"temperature": 3}, "invalid_value", "response.temperature"),
        ("max-tokens-0", {"max_response_output_tokens": 0}, "invalid_value", "response.max_response_output_tokens"),
        ("modality-video", {"modalities": ["video"]}, "invalid_value", "response.modalities[0]"),
        ("format-mp3", {"output_audio_format": "mp3"}, "invalid_value", "response.output_audio_format"),
    ]


@pytest.mark.parametrize(
    ("dialect", "response", "code", "param"),
    [
        pytest.param(dialect, response, code, param, id=f"{dialect}-{name}")
        for dialect in DIALECTS
        for name, response, code, param in response_cases(dialect)
    ],
)
async def test_bad_response_create(server: RunningServer, dialect: str, response: Any, code: str, param: str) -> None:
    async with connect(server, dialect) as rc:
        await add_user_item(rc, "item_user")
        await send_bad(rc, {"type": "response.create", "event_id": EVENT_ID, "response": response})
        await expect_error(rc, code, param)
        await rc.no_event_within(0.3)  # no response was started
        await assert_session_works(rc)


@pytest.mark.parametrize(
    ("dialect", "item", "code", "param"),
    cases(
        ("item-type", {"type": "bogus"}, "invalid_value", "response.input[0].type"),
        (
            "part-no-type",
            message("user", {"text": "hi"}),
            "missing_required_parameter",
            "response.input[0].content[0].type",
        ),
        ("reference-no-id", {"type": "item_reference"}, "missing_required_parameter", "response.input[0].id"),
    ),
)
async def test_bad_inline_input_item(
    server: RunningServer, dialect: str, item: dict[str, Any], code: str, param: str
) -> None:
    async with connect(server, dialect) as rc:
        await send_bad(rc, {"type": "response.create", "event_id": EVENT_ID, "response": {"input": [item]}})
        await expect_error(rc, code, param)
        await assert_session_works(rc)


def long_answer(dialect: str) -> dict[str, Any]:
    key = "max_output_tokens" if dialect == "ga" else "max_response_output_tokens"
    return {"instructions": "Write a story of at least 300 words. Never stop early.", key: "inf"}


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_response_create_while_one_is_active(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as rc:
        await rc.send(user_text("Tell me a long story about a lighthouse keeper."))
        await rc.send({"type": "response.create", "event_id": "evt_first", "response": long_answer(dialect)})
        await send_bad(rc, {"type": "response.create", "event_id": EVENT_ID})
        error = (await rc.until("error"))["error"]
        assert error["code"] == "conversation_already_has_active_response", error
        assert error["event_id"] == EVENT_ID and error["param"] is None
        active = rc.of_type("response.created")[0]["response"]["id"]
        assert active in error["message"]
        # An out-of-band response may still run beside it; cancelling the active one leaves it be.
        key = "max_output_tokens" if dialect == "ga" else "max_response_output_tokens"
        await rc.send({"type": "response.create", "response": {"conversation": "none", key: 4}})
        await rc.send({"type": "response.cancel", "event_id": "evt_cancel", "response_id": active})
        while len(rc.of_type("response.done")) < 2:
            await rc.until("response.done")
        statuses = {done["response"]["id"]: done["response"]["status"] for done in rc.of_type("response.done")}
        assert statuses[active] == "cancelled", statuses
        assert len(rc.of_type("error")) == 1
        await assert_session_works(rc)


@pytest.mark.parametrize(
    ("dialect", "event"),
    cases(
        ("nothing-active", {"type": "response.cancel"}),
        ("unknown-id", {"type": "response.cancel", "response_id": "resp_nowhere"}),
    ),
)
async def test_cancel_with_nothing_active(server: RunningServer, dialect: str, event: dict[str, Any]) -> None:
    async with connect(server, dialect) as rc:
        await send_bad(rc, {**event, "event_id": EVENT_ID})
        error = await expect_error(rc, "response_cancel_not_active", None)
        assert error["message"] == "Cancellation failed: no active response found"
        await assert_session_works(rc)


# Clients that vanish, clients that flood ---------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("how", ["abort", "close"])
async def test_client_vanishes_mid_response(small_server: RunningServer, dialect: str, how: str) -> None:
    """A client gone after the first delta (TCP reset or a clean close) leaves no session or response behind."""
    await wait_metrics_idle(small_server)
    delta = "response.output_text.delta" if dialect == "ga" else "response.text.delta"
    async with connect(small_server, dialect) as rc:
        await rc.send(user_text("Tell me a story about a lighthouse keeper, 300 words."))
        await rc.send({"type": "response.create", "response": long_answer(dialect)})
        await rc.until(delta)
        assert metric(small_server, "parley_active_responses") == 1
        socket = rc.connection._connection
        if how == "abort":
            socket.transport.abort()
        else:
            await socket.close()
    await wait_metrics_idle(small_server)
    # The model is free again: a new session gets a whole response, promptly.
    async with connect(small_server, dialect) as rc:
        await asyncio.wait_for(assert_session_works(rc), 20)
    assert httpx.get(f"{small_server.http_url}/healthz", timeout=5).status_code == 200


BAD_FRAMES: list[str | bytes] = [
    "{not json",
    json.dumps({"type": "scooby.dooby.doo", "event_id": "evt_flood_{i}"}),
    b"\x00binary",
    json.dumps({"type": "input_audio_buffer.append", "audio": "!!", "event_id": "evt_flood_{i}"}),
    json.dumps({"type": "session.update", "session": {"instructions": 5}, "event_id": "evt_flood_{i}"}),
    json.dumps({"type": "conversation.item.delete", "item_id": "item_nowhere", "event_id": "evt_flood_{i}"}),
    json.dumps({"type": "response.cancel", "event_id": "evt_flood_{i}"}),
]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_many_bad_frames_in_a_row(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as rc:
        expected: list[str | None] = []
        for i in range(200):
            frame = BAD_FRAMES[i % len(BAD_FRAMES)]
            if isinstance(frame, bytes):
                await rc.connection._connection.send(frame)
                expected.append(None)
            else:
                text = frame.replace("{i}", str(i))
                await rc.send_raw(text)
                expected.append(f"evt_flood_{i}" if "evt_flood" in text else None)
        for event_id in expected:
            event = await rc.next(timeout=30)
            assert event["type"] == "error", event
            assert event["error"]["event_id"] == event_id, event
        await assert_session_works(rc)
