"""The conformance validator accepts the shared fixtures and catches known-bad events and streams."""

import copy
import json
import re
from typing import Any

import pytest

from tests.conformance.paths import shared_dir
from tests.conformance.validator import (
    DEFAULT_ALLOWED_EXTRAS,
    Dialect,
    EventValidator,
    assert_conformant,
    check_stream,
)

FIXTURES = shared_dir() / "realtime" / "fixtures"
DIALECTS: tuple[Dialect, ...] = ("ga", "beta")

# The synthetic flows are consecutive slices of one session (their ids count up across files),
# listed here in session order.
FLOWS = (
    "session_start",
    "audio_turn_server_vad",
    "text_only",
    "function_call",
    "barge_in",
    "response_cancel",
)

# session_start answers a client session.update that the fixture does not list (PROTOCOL.md §3.1 step 3).
IMPLIED_SESSION_UPDATE = {"type": "session.update", "session": {}}

TRANSCRIPT_DELTAS = {"response.output_audio_transcript.delta", "response.audio_transcript.delta"}


def read_lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def server_events(name: str) -> list[dict[str, Any]]:
    return [e for e in read_lines(name) if "#client" not in e and "#note" not in e]


def client_events(name: str) -> list[dict[str, Any]]:
    return [e["#client"] for e in read_lines(name) if "#client" in e]


def notes(name: str) -> list[str]:
    return [e["#note"] for e in read_lines(name) if "#note" in e]


def item_ids(events: list[dict[str, Any]]) -> set[str]:
    ids = {e.get("item_id") for e in events} | {(e.get("item") or {}).get("id") for e in events}
    return {i for i in ids if isinstance(i, str)}


def rekey(events: list[dict[str, Any]], replacements: dict[str, str], label: str) -> list[dict[str, Any]]:
    """Copies with ids replaced and fresh event_ids, so borrowed events fit into another stream."""
    text = json.dumps(events)
    for old, new in replacements.items():
        text = text.replace(old, new)
    copies = json.loads(text)
    for n, event in enumerate(copies):
        event["event_id"] = f"event_{label}{n}"
    return copies


def opening_of_audio_response(dialect: Dialect, response_id: str, item_id: str, transcript: str) -> list[dict]:
    """response.created up to the first transcript and audio deltas, cut from the audio-turn flow.

    Used where a flow (or a test) needs a response that is already streaming audio."""
    turn = server_events(f"{dialect}_audio_turn_server_vad.jsonl")
    start = next(i for i, e in enumerate(turn) if e["type"] == "response.created")
    opening: list[dict[str, Any]] = []
    for event in turn[start:]:
        if event["type"].endswith(".done"):
            break
        # Keep the first event of each type: created, output_item.added, the assistant's conversation
        # item event, content_part.added, one transcript delta, one audio delta.
        seen = {e["type"] for e in opening}
        if "input_audio_transcription" not in event["type"] and event["type"] not in seen:
            opening.append(event)
    replacements = {opening[0]["response"]["id"]: response_id, opening[1]["item"]["id"]: item_id}
    opening = rekey(opening, replacements, "opening")
    for event in opening:
        if event["type"] in TRANSCRIPT_DELTAS:
            event["delta"] = transcript
    return opening


def session_created(dialect: Dialect) -> dict[str, Any]:
    return server_events(f"{dialect}_session_start.jsonl")[0]


def flow_stream(dialect: Dialect, flow: str) -> tuple[list[dict], list[dict], set[str]]:
    """(server events, client events, known item ids) to check one flow as a whole session."""
    name = f"{dialect}_{flow}.jsonl"
    events = server_events(name)
    before = FLOWS[: FLOWS.index(flow)]
    known = set().union(*(item_ids(server_events(f"{dialect}_{f}.jsonl")) for f in before))
    prefix = server_events(f"{dialect}_session_start.jsonl") if flow != "session_start" else []
    if flow == "barge_in":
        # Starts while a response streams audio; its first note names the response and item.
        response_id, item_id = re.search(r"response (\S+) / item (\S+)", notes(name)[0]).groups()
        transcript = next(e["transcript"] for e in events if e["type"].endswith("transcript.done"))
        prefix += opening_of_audio_response(dialect, response_id, item_id, transcript)
    if flow == "response_cancel":
        # Starts right after the client cancels a response that has announced no output yet.
        response_id = next(e["response"]["id"] for e in events if e["type"] == "response.done")
        prefix += opening_of_audio_response(dialect, response_id, "item_unused", "")[:1]
    return prefix + events, [IMPLIED_SESSION_UPDATE, *client_events(name)], known


def problems_of(events: list[dict], dialect: Dialect, **kwargs: Any) -> str:
    try:
        assert_conformant(events, dialect, **kwargs)
    except AssertionError as error:
        return str(error)
    return ""


# --- real and synthetic fixtures ----------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_real_captured_events_validate(dialect: Dialect) -> None:
    validator = EventValidator(dialect)
    events = server_events(f"{dialect}_real_events.jsonl")
    assert events
    for event in events:
        assert validator.validate_event(event) == [], event


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_synthetic_flow_is_conformant(dialect: Dialect, flow: str) -> None:
    events, sent, known = flow_stream(dialect, flow)
    assert_conformant(events, dialect, client_events=sent, known_item_ids=known)


# --- negative fixture lines ---------------------------------------------------------------------


def context(dialect: Dialect, kind: str) -> list[dict[str, Any]]:
    """A conformant stream to put a negative event into, so that only the event itself can be at fault."""
    if kind == "alone":
        return []
    if kind == "session":
        return [session_created(dialect)]
    opening = opening_of_audio_response(dialect, "r", "i", "")
    if kind == "response":
        return [session_created(dialect), opening[0]]
    assert kind == "audio_part"
    return [session_created(dialect), *(e for e in opening if "delta" not in e["type"])]


# (file, line, dialect it is checked in, context, fragments the report must contain)
NEGATIVE_CASES = [
    ("neg_examples.jsonl", 1, "beta", "alone", ["session.model"]),  # custom model vs beta Literal
    ("neg_examples.jsonl", 1, "ga", "alone", ["session: matches no variant", "type: Field required"]),
    ("neg_examples.jsonl", 2, "ga", "session", ["not a ga event name"]),
    ("neg_examples.jsonl", 3, "ga", "response", ["response.status", "'canceled'"]),
    ("neg_examples.jsonl", 3, "beta", "response", ["response.status", "'canceled'"]),
    ("neg_examples.jsonl", 4, "ga", "session", ["item_id: Field required"]),
    ("neg_examples.jsonl", 4, "beta", "session", ["item_id: Field required"]),
    ("neg_examples_pipecat.jsonl", 1, "ga", "response", ["usage is null", "'object'", "'status_details'"]),
    ("neg_examples_pipecat.jsonl", 1, "beta", "response", ["usage is null", "'object'"]),
    ("neg_examples_pipecat.jsonl", 2, "ga", "response", ["input_token_details", "output_token_details"]),
    ("neg_examples_pipecat.jsonl", 2, "beta", "response", ["input_token_details"]),
    ("neg_examples_pipecat.jsonl", 3, "ga", "session", ["not a ga event name"]),
    ("neg_examples_pipecat.jsonl", 4, "ga", "session", ["refers to no response.created"]),
    ("neg_examples_pipecat.jsonl", 4, "beta", "session", ["refers to no response.created"]),
    ("neg_examples_pipecat.jsonl", 5, "ga", "session", ["idle_timeout_ms"]),
    ("neg_examples_pipecat.jsonl", 5, "beta", "session", ["not a beta event name"]),
    ("neg_examples_pipecat.jsonl", 6, "ga", "audio_part", ["not whole 16-bit PCM samples"]),
    ("neg_examples_pipecat.jsonl", 6, "beta", "session", ["not a beta event name"]),
    ("neg_examples_pipecat.jsonl", 7, "ga", "alone", ["not the full effective session", "expires_at"]),
    ("neg_examples_pipecat.jsonl", 7, "beta", "alone", ["session.model"]),
    ("neg_examples_pipecat.jsonl", 8, "ga", "session", ["usage: Field required"]),
    ("neg_examples_pipecat.jsonl", 8, "beta", "session", ["usage: Field required"]),
]


def test_every_negative_line_has_a_case() -> None:
    covered = {(name, line) for name, line, *_ in NEGATIVE_CASES}
    for name in ("neg_examples.jsonl", "neg_examples_pipecat.jsonl"):
        assert {(name, n) for n in range(1, len(read_lines(name)) + 1)} <= covered


@pytest.mark.parametrize(
    ("name", "line", "dialect", "kind", "fragments"),
    NEGATIVE_CASES,
    ids=[f"{name.removesuffix('.jsonl')}:{line}:{dialect}" for name, line, dialect, *_ in NEGATIVE_CASES],
)
def test_negative_line_is_caught(name: str, line: int, dialect: Dialect, kind: str, fragments: list[str]) -> None:
    event = read_lines(name)[line - 1]
    # The fixtures use ids like "e1"; give a valid one so the event_id check cannot be what catches it.
    event["event_id"] = "event_negative"
    base = context(dialect, kind)
    known = item_ids(server_events(f"{dialect}_audio_turn_server_vad.jsonl"))
    if base:
        assert problems_of(base, dialect, known_item_ids=known, allow_open_responses=True) == ""
    report = problems_of([*base, event], dialect, known_item_ids=known, allow_open_responses=True)
    for fragment in fragments:
        assert fragment in report, report


# --- hand-made violations -----------------------------------------------------------------------


def ga_text_flow() -> tuple[list[dict], list[dict], set[str]]:
    return flow_stream("ga", "text_only")


def index_of(events: list[dict], event_type: str) -> int:
    return next(i for i, e in enumerate(events) if e["type"] == event_type)


def test_text_flow_base_is_conformant() -> None:
    events, sent, known = ga_text_flow()
    assert check_stream(events, "ga", sent, known) == []


def test_missing_response_done() -> None:
    events, sent, known = ga_text_flow()
    del events[index_of(events, "response.done")]
    assert any("has no response.done" in p for p in check_stream(events, "ga", sent, known))
    assert check_stream(events, "ga", sent, known, allow_open_responses=True) == []


def test_done_text_differs_from_deltas() -> None:
    events, sent, known = ga_text_flow()
    events[index_of(events, "response.output_text.done")]["text"] = "Hi?"
    assert any("text 'Hi?' != concatenated deltas 'Hi!'" in p for p in check_stream(events, "ga", sent, known))


def test_content_part_done_differs_from_deltas() -> None:
    events, sent, known = ga_text_flow()
    events[index_of(events, "response.content_part.done")]["part"]["text"] = "Hello"
    assert any("part.text 'Hello'" in p for p in check_stream(events, "ga", sent, known))


def test_duplicate_event_id() -> None:
    events, sent, known = ga_text_flow()
    events[-1]["event_id"] = events[-2]["event_id"]
    assert any("already used" in p for p in check_stream(events, "ga", sent, known))


def test_delta_after_content_part_done() -> None:
    events, sent, known = ga_text_flow()
    late = copy.deepcopy(events[index_of(events, "response.output_text.delta")])
    late["event_id"] = "event_late"
    events.insert(index_of(events, "response.content_part.done") + 1, late)
    assert any("already had response.content_part.done" in p for p in check_stream(events, "ga", sent, known))


def test_delta_after_its_stream_done() -> None:
    events, sent, known = ga_text_flow()
    late = copy.deepcopy(events[index_of(events, "response.output_text.delta")])
    late["event_id"] = "event_late"
    events.insert(index_of(events, "response.output_text.done") + 1, late)
    problems = check_stream(events, "ga", sent, known)
    assert any("text delta after the text stream's .done" in p for p in problems)


def test_ga_item_added_without_item_done() -> None:
    events, sent, known = ga_text_flow()
    del events[index_of(events, "conversation.item.done")]
    assert any("has no conversation.item.done" in p for p in check_stream(events, "ga", sent, known))


def test_output_item_done_missing_before_response_done() -> None:
    events, sent, known = ga_text_flow()
    del events[index_of(events, "response.output_item.done")]
    assert any("has no response.output_item.done" in p for p in check_stream(events, "ga", sent, known))


def test_mismatched_ids_and_indexes() -> None:
    events, sent, known = ga_text_flow()
    events[index_of(events, "response.output_text.delta")]["output_index"] = 1
    events[index_of(events, "response.output_text.done")]["item_id"] = "item_other"
    problems = check_stream(events, "ga", sent, known)
    assert any("no response.output_item.added at output_index 1" in p for p in problems)
    assert any("item id 'item_other' differs" in p for p in problems)


def test_unknown_previous_item_id() -> None:
    events, sent, _known = ga_text_flow()
    assert any("previous_item_id" in p for p in check_stream(events, "ga", sent))


def test_audio_in_response_done_output() -> None:
    events, sent, known = flow_stream("ga", "audio_turn_server_vad")
    events[index_of(events, "response.done")]["response"]["output"][0]["content"][0]["audio"] = "AAAA"
    assert any("carries audio bytes" in p for p in check_stream(events, "ga", sent, known))


def test_session_update_needs_an_answer() -> None:
    events, sent, known = ga_text_flow()
    second = {"type": "session.update", "event_id": "client_2", "session": {}}
    assert any("session.update" in p for p in check_stream(events, "ga", [*sent, second], known))
    rejected = {
        "type": "error",
        "event_id": "event_rejected",
        "error": {"type": "invalid_request_error", "message": "bad", "event_id": "client_2"},
    }
    assert check_stream([*events, rejected], "ga", [*sent, second], known) == []


def test_misspelled_key_is_an_extra() -> None:
    events, _sent, _known = ga_text_flow()
    delta = events[index_of(events, "response.output_text.delta")]
    delta["respnse_id"] = delta["response_id"]
    part_done = events[index_of(events, "response.content_part.done")]
    part_done["part"]["txt"] = "Hi!"
    validator = EventValidator("ga")
    assert validator.validate_event(delta) == ["response.output_text.delta: extra key 'respnse_id'"]
    assert validator.validate_event(part_done) == ["response.content_part.done: extra key 'part.txt'"]
    assert EventValidator("ga", (*DEFAULT_ALLOWED_EXTRAS, "respnse_id")).validate_event(delta) == []


def test_allow_list_is_what_lets_real_extras_through() -> None:
    ga_session = server_events("ga_real_events.jsonl")[0]
    beta_events = server_events("beta_text_only.jsonl")
    beta_done = beta_events[index_of(beta_events, "response.done")]
    assert EventValidator("ga", allowed_extras=()).validate_event(ga_session) == [
        f"session.created: extra key 'session.{key}'" for key in ("object", "id", "expires_at")
    ]
    assert EventValidator("beta", allowed_extras=()).validate_event(beta_done) == [
        f"response.done: extra key 'response.usage.input_token_details.{key}'"
        for key in ("image_tokens", "cached_tokens_details")
    ]


def test_event_id_shape() -> None:
    events = server_events("ga_real_events.jsonl")
    event = events[index_of(events, "rate_limits.updated")]
    event["event_id"] = "rl_1"
    assert EventValidator("ga").validate_event(event) == [
        "rate_limits.updated: event_id 'rl_1' does not look like 'event_<id>'"
    ]


def test_dialect_purity_both_ways() -> None:
    beta_events = server_events("beta_text_only.jsonl")
    beta_delta = beta_events[index_of(beta_events, "response.text.delta")]
    ga_added = server_events("ga_text_only.jsonl")[0]
    assert "not a ga event name" in EventValidator("ga").validate_event(beta_delta)[0]
    assert "not a beta event name" in EventValidator("beta").validate_event(ga_added)[0]


def test_checker_reports_instead_of_raising_on_garbage() -> None:
    garbage: list[Any] = [{"type": "response.done", "response": "nope"}, {"no": "type"}, {"type": 3}, "text"]
    problems = check_stream(garbage, "ga")
    assert problems and all(isinstance(p, str) for p in problems)
    assert all(EventValidator("beta").validate_event(e) for e in garbage)
