"""``parley bench voice`` against a live server: two real recordings, a complete and sane report."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from parley.bench import voice_latency
from parley.bench.wer import corpus_wer, normalize
from tests.support.server import RunningServer, running_server


@pytest.fixture(scope="module")
def bench_server() -> Iterator[RunningServer]:
    with running_server("bench") as running:
        yield running


async def test_two_utterances_give_a_complete_report(bench_server: RunningServer) -> None:
    utterances = voice_latency.load_utterances(voice_latency.default_sources())[:2]
    assert len(utterances) == 2

    results = await voice_latency.run(bench_server.ws_url, utterances)

    assert [r.id for r in results] == [u.id for u in utterances]
    for result in results:
        assert result.errors == [], result.errors
        assert result.voice_to_voice_ms is not None and 0 < result.voice_to_voice_ms < 30_000
        assert result.speech_stopped_ms is not None and -5_000 < result.speech_stopped_ms < 30_000
        assert result.transcript, "no input transcript arrived"
        assert result.response_status == "completed"
        assert result.answer_audio_ms > 0
        stages = result.stages_ms
        assert stages["speech_stopped"] <= stages["committed"] <= stages["first audio"] <= stages["response.done"]
    summary = voice_latency.summary(results)
    assert (summary["utterances"], summary["completed"], summary["errors"]) == (2, 2, 0)
    latency = summary["voice_to_voice_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["max"] < 30_000
    assert isinstance(summary["wer"], float) and 0.0 <= summary["wer"] <= 1.5
    table = voice_latency.markdown("fast", results)
    assert "| all | 2 | 0 |" in table
    json.dumps(voice_latency.report(results))  # the --json-out payload serialises


def test_normalize_makes_styles_comparable() -> None:
    assert normalize("Set Bed Light brightness to 50%") == "set bed light brightness to fifty percent"
    assert normalize("What\u2019s the date?") == "what's the date"
    assert normalize('a "forty-two line Bible", 1,455') == "a forty two line bible one thousand four hundred fifty five"
    assert corpus_wer(["set a timer for 5 minutes"], ["Set a timer for five minutes."]) == 0.0
    assert corpus_wer(["cancel timer", "go"], ["cancel", "go"]) == pytest.approx(1 / 3)
