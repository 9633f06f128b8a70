"""``parley bench voice``: a short run against a live server through the command line gives complete, sane reports;
and the parts that decide its figures (last voiced sample, playback underrun, event parsing) on their own."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parley.bench import playback, recordings, voice_report
from parley.bench.dialects import DIALECTS, with_timings
from parley.bench.voice_latency import Options, TurnResult, _Session
from parley.bench.wer import corpus_wer, normalize
from tests.conformance.paths import shared_dir
from tests.support.server import running_server

SPEECH = shared_dir() / "speech"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# A short run against a live server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path, str]]:
    """Three utterances, two sessions at once, through the ``parley`` command; the server checked alive after."""
    out = tmp_path_factory.mktemp("bench")
    with running_server("bench") as server:
        command = [
            *(sys.executable, "-m", "parley.cli", "bench", "voice", "--url", server.ws_url),
            *("--speech", str(SPEECH / "commands_en"), "--limit", "3", "--concurrency", "2"),
            *("--label", "parley fast", "--out", str(out)),
        ]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=240, env=os.environ)
        assert finished.returncode == 0, finished.stderr[-3000:]
        yield json.loads((out / "results.json").read_text()), out, finished.stdout


def test_live_run_gives_a_complete_and_sane_report(bench_run: tuple[dict[str, Any], Path, str]) -> None:
    data, out, stdout = bench_run
    assert {"label", "settings", "machine", "summary", "real_time", "sessions", "turns"} <= data.keys()
    summary = data["summary"]
    assert (summary["utterances"], summary["completed"], summary["errors"]) == (3, 3, 0)
    latency = summary["voice_to_voice_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["max"] < 30_000
    assert isinstance(summary["wer"], float) and 0.0 <= summary["wer"] <= 1.5
    for turn in data["turns"]:
        assert turn["errors"] == [] and turn["response_status"] == "completed"
        assert turn["transcript"] and turn["answer_audio_ms"] > 0
        assert 0 < turn["voiced_end_ms"] <= turn["duration_s"] * 1000 + 1
        assert 0 < turn["voice_to_voice_ms"] < 30_000
        assert turn["underrun_ms"] is not None and turn["underrun_ms"] >= 0
        stages = turn["wire_stages_ms"]
        assert stages["committed"] <= stages["first audio"] == turn["voice_to_voice_ms"] <= stages["response.done"]
    # two sessions at once: three sessions in all, on two lanes, the second lane staggered
    sessions = data["sessions"]
    assert len(sessions) == 3 and {s["lane"] for s in sessions} == {0, 1}
    assert data["settings"]["stagger_s"] > 0 and not any(s["errors"] for s in sessions)
    real_time = data["real_time"]
    assert real_time["tolerance_ms"] == playback.TOLERANCE_MS and isinstance(real_time["fell_behind"], bool)
    assert real_time["fell_behind"] == any(s["underrun_max_ms"] > playback.TOLERANCE_MS for s in sessions)
    # the Markdown table (printed and written) has the headline row and a row per session
    table = (out / "results.md").read_text()
    assert table.strip() == stdout.strip()
    assert "| parley fast | 3 | 0 |" in table
    assert "| commands_en | 3 | 0 |" in table
    assert sum(1 for line in table.splitlines() if line.startswith("| ") and line.split("|")[2].strip() in "01") >= 3
    png = (out / "latency.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000


def test_live_run_has_parleys_per_stage_split(bench_run: tuple[dict[str, Any], Path, str]) -> None:
    """Needs the server to send ``parley.turn.timings`` to clients that opt in."""
    data, _, _ = bench_run
    split = data["summary"]["split"]
    assert split["source"] == "parley.turn.timings" and split["turns"] == 3
    stages = split["stages_ms"]
    assert list(stages) == list(voice_report.SERVER_STAGES)
    # An answer prepared during the pause can have its transcript before the turn is confirmed over; none can
    # send audio before either.
    for turn in data["turns"]:
        at = turn["server_stages_ms"]
        assert 0 <= at["turn_detected"] <= at["first_audio"]
        assert 0 <= at["transcript"] <= at["llm_first_token"] <= at["first_audio"]
        assert isinstance(turn["server_audio_end_ms"], int)


# The last voiced sample ----------------------------------------------------------------------------------


def _utterance(folder: str, utterance_id: str) -> recordings.Utterance:
    utterances = recordings.load_utterances([SPEECH / folder])
    return next(u for u in utterances if u.id == utterance_id)


def test_last_voiced_sample_ignores_trailing_silence() -> None:
    audio, rate = recordings.read_wav(_utterance("ljspeech_en", "LJ001-0003").audio)
    speech_end = recordings.last_voiced_ms(audio, rate)
    assert speech_end is not None and len(audio) / rate * 1000 - 200 < speech_end <= len(audio) / rate * 1000
    padded = np.concatenate([audio, np.zeros(2 * rate, np.float32)])
    assert recordings.last_voiced_ms(padded, rate) == pytest.approx(speech_end, abs=32)


def test_last_voiced_sample_is_that_of_the_last_utterance() -> None:
    first, rate = recordings.read_wav(_utterance("commands_en", "en-nevermind").audio)
    second, _ = recordings.read_wav(_utterance("pocketsphinx_en", "cards-001").audio)
    second_end = recordings.last_voiced_ms(second, rate)
    assert second_end is not None
    joined = np.concatenate([first, np.zeros(rate, np.float32), second])
    offset_ms = (len(first) + rate) / rate * 1000
    assert recordings.last_voiced_ms(joined, rate) == pytest.approx(offset_ms + second_end, abs=64)
    assert recordings.last_voiced_ms(np.zeros(rate, np.float32), rate) is None


def test_last_voiced_sample_of_a_recording_that_ends_in_room_noise() -> None:
    recording = recordings.prepare(_utterance("commands_en", "en-nevermind"))
    assert recording.voiced and len(recording.pcm) == pytest.approx(1.89 * 48_000, abs=96)
    # "-mind" sounds until about 1.25 s (speech energy), then 0.6 s of room noise follow; Silero's probability alone
    # drops below threshold at 0.96 s, the energy of the soft syllable carries the end on
    assert 1150 < recording.voiced_end_ms < 1350


# Playback underrun ---------------------------------------------------------------------------------------


def test_underrun_is_zero_when_every_delta_arrives_before_it_is_due() -> None:
    assert playback.underrun_ms([]) == 0.0
    assert playback.underrun_ms([(10.0, 500.0)]) == 0.0
    assert playback.underrun_ms([(10.0, 200.0), (10.05, 200.0), (10.2, 200.0), (10.39, 1000.0)]) == 0.0


def test_underrun_is_the_worst_lateness_against_real_time_playback() -> None:
    # 200 ms of audio, then the next delta 350 ms later: 150 ms late; the third, due after 300 ms, 200 ms late
    deltas = [(1.0, 200.0), (1.35, 100.0), (1.5, 100.0)]
    assert playback.underrun_ms(deltas) == pytest.approx(200.0)
    assert playback.underrun_ms(deltas[:2]) == pytest.approx(150.0)
    assert playback.fell_behind(playback.underrun_ms(deltas))
    assert not playback.fell_behind(playback.underrun_ms([(1.0, 100.0), (1.14, 100.0)]))  # 40 ms: within tolerance


# Events as a server sends them ---------------------------------------------------------------------------


class _Replay:
    """Plays a recorded list of server events into the receiver, ``gap_s`` apart."""

    def __init__(self, events: list[dict[str, Any]], gap_s: float = 0.002) -> None:
        self._events, self._gap = events, gap_s

    def __aiter__(self) -> _Replay:
        return self

    async def __anext__(self) -> str:
        if not self._events:
            raise StopAsyncIteration
        await asyncio.sleep(self._gap)
        return json.dumps(self._events.pop(0))


def _turn_events(dialect: str, timings: bool) -> list[dict[str, Any]]:
    audio_delta = DIALECTS[dialect].audio_delta  # type: ignore[index]
    chunk = "AAAA" * 1200  # 3600 bytes: 75 ms of 24 kHz pcm16
    events: list[dict[str, Any]] = [
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 2150, "item_id": "item_u1"},
        {"type": "input_audio_buffer.committed", "item_id": "item_u1", "previous_item_id": None},
        {"type": "conversation.item.input_audio_transcription.completed", "item_id": "item_u1", "transcript": "Hi."},
        {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
        {"type": audio_delta, "response_id": "resp_1", "item_id": "item_a1", "delta": chunk},
        {"type": audio_delta, "response_id": "resp_1", "item_id": "item_a1", "delta": chunk},
    ]
    if timings:
        stages = {"turn_detected": 210.5, "transcript": 480.0, "llm_first_token": 530.25, "first_audio": 700.0}
        events.append(
            {
                "type": "parley.turn.timings",
                "event_id": "event_9",
                "response_id": "resp_1",
                "item_id": "item_u1",
                "audio_end_ms": 2140,
                "stages_ms": stages,
                "speculative": True,
            }
        )
    output = [{"type": "message", "content": [{"type": "audio", "transcript": "Hello there."}]}]
    events.append({"type": "response.done", "response": {"id": "resp_1", "status": "completed", "output": output}})
    return events


async def _replay(dialect: str, timings: bool) -> TurnResult:
    recording = recordings.Recording(
        recordings.Utterance("u1", "f", SPEECH / "x.wav", "hi", "en", 2.0), bytes(96_000), 1850.0, voiced=True
    )
    session = _Session(Options(url="ws://unused", dialect=dialect), [recording])  # type: ignore[arg-type]
    turn = session.turns[0]
    session.current, turn.stream_start_ms, turn.voiced_at = turn, 300.0, time.perf_counter()
    with pytest.raises(ConnectionError):  # the recorded stream ends before the session would
        await session._receive(_Replay(_turn_events(dialect, timings)))
    return session.results(0)[0]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_timings_event_gives_the_server_split(dialect: str) -> None:
    result = await _replay(dialect, timings=True)
    assert result.ok and result.transcript == "Hi." and result.answer == "Hello there."
    assert result.server_stages_ms == {"turn_detected": 210.5, "transcript": 480.0, "llm_first_token": 530.2,
                                       "first_audio": 700.0}  # fmt: skip
    assert (result.server_audio_end_ms, result.speculative) == (2140, True)
    assert result.answer_audio_ms == 150.0 and result.vad_end_offset_ms == 0.0  # 2150 - (300 + 1850)
    assert 0 < result.voice_to_voice_ms == result.wire_stages_ms["first audio"]  # type: ignore[operator]
    split = voice_report.split([result])
    assert split["source"] == "parley.turn.timings" and split["stages_ms"]["llm_first_token"]["p50"] == 530


async def test_without_timings_the_split_comes_from_wire_events() -> None:
    result = await _replay("ga", timings=False)
    assert result.ok and result.server_stages_ms is None
    split = voice_report.split([result])
    assert split["source"] == "wire events"
    assert set(split["stages_ms"]) == {"turn_detected", "transcript", "first_text", "first_audio"}
    assert split["stages_ms"]["first_audio"]["p50"] == round(result.voice_to_voice_ms or 0)


def test_session_update_and_url_per_dialect() -> None:
    ga = DIALECTS["ga"].session_update("server_vad", 200, 100)["session"]
    assert ga["type"] == "realtime" and ga["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 200
    assert ga["max_output_tokens"] == 100
    assert ga["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24_000}
    beta = DIALECTS["beta"].session_update("semantic_vad", 200)["session"]
    assert beta["input_audio_format"] == beta["output_audio_format"] == "pcm16"
    assert beta["turn_detection"] == {"type": "semantic_vad"}
    assert beta["max_response_output_tokens"] == "inf"
    assert DIALECTS["beta"].headers("k") == {"Authorization": "Bearer k", "OpenAI-Beta": "realtime=v1"}
    assert with_timings("ws://h:1/v1/realtime?model=m") == "ws://h:1/v1/realtime?model=m&parley_timings=true"


def test_normalize_makes_styles_comparable() -> None:
    assert normalize("Set Bed Light brightness to 50%") == "set bed light brightness to fifty percent"
    assert normalize("What\u2019s the date?") == "what's the date"
    assert normalize('a "forty-two line Bible", 1,455') == "a forty two line bible one thousand four hundred fifty five"
    assert corpus_wer(["set a timer for 5 minutes"], ["Set a timer for five minutes."]) == 0.0
    assert corpus_wer(["cancel timer", "go"], ["cancel", "go"]) == pytest.approx(1 / 3)


def test_reports_name_shared_folders_without_this_machines_path(tmp_path: Path) -> None:
    shared = recordings.speech_source("commands_en")
    assert recordings.source_label(shared) == "shared:speech/commands_en"
    assert recordings.source_label(tmp_path / "mine") == str(tmp_path / "mine")
