"""Per-turn timings and the early answer: real recordings, real server (fast profile), strict events."""

from __future__ import annotations

import asyncio
import re

import httpx
import numpy as np

from parley.bench.wer import wer
from tests.support.client import RecordingConnection, connect
from tests.support.server import RunningServer
from tests.support.speech import silence, stream, utterance

TURN_TIMEOUT_S = 120
STAGES = {"turn_detected", "transcript", "llm_first_token", "first_audio"}


def _session(silence_duration_ms: int) -> dict[str, object]:
    return {
        "type": "realtime",
        "instructions": "You are a voice assistant. Answer in one short sentence.",
        "output_modalities": ["audio"],
        "max_output_tokens": 40,
        "audio": {
            "input": {
                "transcription": {"model": "whisper-1"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": silence_duration_ms},
            },
        },
    }


async def _turn(conn: RecordingConnection, samples: np.ndarray, silence_duration_ms: int) -> dict[str, object]:
    await conn.send({"type": "session.update", "session": _session(silence_duration_ms)})
    await conn.until("session.updated")
    sender = asyncio.create_task(stream(conn, samples))
    try:
        return (await conn.until("response.done", TURN_TIMEOUT_S))["response"]
    finally:
        sender.cancel()


def _metric(server: RunningServer, name: str, labels: str) -> float:
    text = httpx.get(f"{server.http_url}/metrics").text
    found = re.search(rf"^{re.escape(name)}{{{re.escape(labels)}}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_timings_reach_clients_that_ask_and_metrics(server: RunningServer) -> None:
    spoken = utterance("commands_en", "en-what_s_the_date")
    first_audio_before = _metric(server, "parley_turn_stage_seconds_count", 'stage="first_audio"')
    async with connect(server, "ga", speak=True, timings=True) as conn:
        samples = np.concatenate([silence(300), spoken.samples(24_000), silence(3000)])
        response = await _turn(conn, samples, silence_duration_ms=200)
        conn.assert_conformant()
    timings = conn.of_type("parley.turn.timings")
    assert len(timings) == 1
    timing = timings[0]
    stopped = conn.of_type("input_audio_buffer.speech_stopped")[-1]
    assert timing["response_id"] == response["id"]
    assert timing["item_id"] == stopped["item_id"]
    assert timing["audio_end_ms"] == stopped["audio_end_ms"]
    # Sent before its response.done, as the last word on the turn.
    types = [event["type"] for event in conn.events]
    assert types.index("parley.turn.timings") == types.index("response.done") - 1
    stages = timing["stages_ms"]
    assert set(stages) == STAGES and all(isinstance(stages[s], float) for s in STAGES), stages
    # The turn cannot be over before its silence has passed, and nothing is heard before the turn is over.
    assert stages["turn_detected"] >= 200 - 40  # a VAD frame (32 ms) of slack
    assert stages["first_audio"] >= stages["turn_detected"]
    assert stages["first_audio"] >= stages["llm_first_token"] >= stages["transcript"] > 0
    # A 200 ms silence is longer than the pause that starts the answer early.
    assert timing["speculative"] is True
    assert _metric(server, "parley_turn_stage_seconds_count", 'stage="first_audio"') == first_audio_before + 1


async def test_an_early_answer_is_dropped_when_the_caller_goes_on(server: RunningServer) -> None:
    first = utterance("commands_en", "en-lock_the_Front_Door")
    second = utterance("commands_en", "en-what_s_the_date")
    dropped_before = _metric(server, "parley_early_answers_total", 'outcome="dropped"')
    async with connect(server, "ga", speak=True, timings=True) as conn:
        # The recordings' own quiet edges make a pause of about a second between the two commands: long enough
        # to start an answer early, shorter than the 2 s of silence that end this session's turns.
        samples = np.concatenate([silence(300), first.samples(24_000), second.samples(24_000), silence(4000)])
        response = await _turn(conn, samples, silence_duration_ms=2000)
        conn.assert_conformant()
    assert _metric(server, "parley_early_answers_total", 'outcome="dropped"') >= dropped_before + 1
    # One turn, one response, started only once the whole turn was over.
    assert len(conn.of_type("input_audio_buffer.committed")) == 1
    assert len(conn.of_type("response.created")) == 1
    types = [event["type"] for event in conn.events]
    assert types.index("input_audio_buffer.speech_stopped") < types.index("response.created")
    # The answer is to everything the caller said, not to what they had said at the pause.
    transcript = conn.of_type("conversation.item.input_audio_transcription.completed")[0]["transcript"]
    assert wer(f"{first.text} {second.text}", transcript) <= 0.5, transcript
    assert response["status"] in {"completed", "incomplete"}
