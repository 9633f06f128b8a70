"""Sessions, items and usage rows written through the writer thread, read back as operators see them."""

from __future__ import annotations

import time

import pytest

from parley.storage import Storage, transcripts, usage
from parley.storage.transcripts import ItemRecord, SessionOpened
from parley.storage.usage import Prices, Tokens
from parley.storage.writer import Operation

NASTY = 'Robert\'); DROP TABLE items;-- "quoted" % _ \\n ünï 🙂'


def opened(session_id: str, project: str | None, key_id: str | None = None) -> SessionOpened:
    return SessionOpened(session_id, project, key_id, "127.0.0.1:1", "run-1", "ga", "gpt-realtime", time.time())


def item(item_id: str, seq: int, text: str, role: str = "user") -> ItemRecord:
    data = {"id": item_id, "type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}
    return ItemRecord(item_id, seq, "message", role, "completed", text, data)


def write_all(storage: Storage, *operations: Operation) -> None:
    writer = storage.writer or storage.start_writer()
    futures = [writer.submit(operation, "test") for operation in operations]
    assert all(future.result(timeout=10) for future in futures)


def test_items_come_back_in_order_with_their_text_intact(storage: Storage) -> None:
    write_all(
        storage,
        lambda c: transcripts.open_session(c, opened("sess_1", NASTY)),
        lambda c: transcripts.record_item(c, "sess_1", item("item_a", 0, NASTY)),
        lambda c: transcripts.record_item(c, "sess_1", item("item_b", 1, "second", "assistant")),
        # A transcript that arrives later updates the item in place; it keeps its position.
        lambda c: transcripts.record_item(c, "sess_1", item("item_a", 5, NASTY + " (heard)")),
        lambda c: transcripts.close_session(c, "sess_1", "client_closed", (1500, 2500)),
    )
    session = transcripts.get_session(storage.engine, "sess_1")
    assert session is not None
    assert session.project == NASTY
    assert [(i.item_id, i.text) for i in session.transcript] == [("item_a", NASTY + " (heard)"), ("item_b", "second")]
    assert session.transcript[1].data["role"] == "assistant"
    assert (session.input_audio_ms, session.output_audio_ms, session.end_reason) == (1500, 2500, "client_closed")
    assert [s.id for s in transcripts.list_sessions(storage.engine, project=NASTY)] == ["sess_1"]
    assert transcripts.list_sessions(storage.engine, project="other") == []


def test_deleting_a_session_deletes_its_transcript_but_not_its_bill(storage: Storage) -> None:
    row = {"response_id": "resp_1", "created_at": time.time(), "status": "completed", "text_input_tokens": 10,
           "cached_text_tokens": 0, "text_output_tokens": 5, "audio_input_tokens": 0, "audio_output_tokens": 0,
           "cost_usd": 0.1}  # fmt: skip
    write_all(
        storage,
        lambda c: transcripts.open_session(c, opened("sess_2", "clinic")),
        lambda c: transcripts.record_item(c, "sess_2", item("item_x", 0, "private")),
        lambda c: transcripts.record_usage(c, "sess_2", row, (0, 0)),
    )
    assert transcripts.delete_session(storage.engine, "sess_2")
    assert transcripts.get_session(storage.engine, "sess_2") is None
    assert not transcripts.delete_session(storage.engine, "sess_2")
    assert [line.responses for line in usage.report(storage.engine)] == [1]


def test_usage_sums_per_project_and_key_with_costs(storage: Storage) -> None:
    prices = Prices()
    spoken = Tokens(text_input=1000, cached_text=400, text_output=200, audio_input=300, audio_output=600)
    # 600 * 0.60 + 400 * 0.30 + 200 * 2.40 + 300 * 10 + 600 * 20 dollars per million tokens
    assert spoken.cost(prices) == pytest.approx((360 + 120 + 480 + 3000 + 12000) / 1e6)

    def row(response_id: str, tokens: Tokens, at: float) -> dict[str, object]:
        return {"response_id": response_id, "created_at": at, "status": "completed",
                "text_input_tokens": tokens.text_input, "cached_text_tokens": tokens.cached_text,
                "text_output_tokens": tokens.text_output, "audio_input_tokens": tokens.audio_input,
                "audio_output_tokens": tokens.audio_output, "cost_usd": tokens.cost(prices)}  # fmt: skip

    now = time.time()
    small = Tokens(10, 0, 5, 0, 0)
    write_all(
        storage,
        lambda c: transcripts.open_session(c, opened("sess_a", "clinic", "key_a")),
        lambda c: transcripts.record_usage(c, "sess_a", row("r1", spoken, now), (60_000, 30_000)),
        lambda c: transcripts.record_usage(c, "sess_a", row("r2", small, now), (60_000, 30_000)),
        lambda c: transcripts.open_session(c, opened("sess_b", NASTY, "key_b")),
        lambda c: transcripts.record_usage(c, "sess_b", row("r3", small, now - 7200), (0, 0)),
    )
    lines = {line.project: line for line in usage.report(storage.engine)}
    clinic = lines["clinic"]
    assert (clinic.key_id, clinic.sessions, clinic.responses) == ("key_a", 1, 2)
    assert clinic.text_input_tokens == 1010 and clinic.cached_text_tokens == 400
    assert clinic.audio_output_tokens == 600 and clinic.audio_minutes == pytest.approx(1.5)
    assert clinic.cost_usd == pytest.approx(spoken.cost(prices) + small.cost(prices))
    assert lines[NASTY].responses == 1
    assert [line.project for line in usage.report(storage.engine, project=NASTY)] == [NASTY]
    recent = usage.report(storage.engine, since=now - 60)
    assert {line.project: line.responses for line in recent} == {"clinic": 2, NASTY: 0}
    assert usage.audio_ms_today(storage.engine, "key_a", now - 60, "another-run") == 90_000
    assert usage.audio_ms_today(storage.engine, "key_a", now - 60, "run-1") == 0


def test_recovery_closes_what_a_dead_server_left_open(storage: Storage) -> None:
    write_all(
        storage,
        lambda c: transcripts.open_session(c, opened("sess_dead", "clinic")),
        lambda c: transcripts.open_session(
            c, SessionOpened("sess_elsewhere", "clinic", None, "10.0.0.2:8000", "run-9", "ga", "m", time.time())
        ),
    )
    assert transcripts.recover(storage.engine, "127.0.0.1:1", older_than=time.time() - 3600) == 1
    dead = transcripts.get_session(storage.engine, "sess_dead")
    assert dead is not None and dead.end_reason == "server_stopped" and dead.ended_at is not None
    elsewhere = transcripts.get_session(storage.engine, "sess_elsewhere")
    assert elsewhere is not None and elsewhere.ended_at is None
