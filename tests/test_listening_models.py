"""Silero VAD and Smart Turn on real recorded speech (shared/speech), with per-call times printed."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from parley.engines.silero_vad import FRAME_SAMPLES, SileroVad
from parley.engines.smart_turn import SmartTurn, fit_window, log_mel
from parley.engines.speech import LISTEN_RATE
from parley.models import resolve
from tests.conformance.paths import shared_dir

FRAME_MS = FRAME_SAMPLES * 1000 // LISTEN_RATE
SILENCE_MS = 1000
BOUNDARY_TOLERANCE_MS = 150


def recordings(folder: str) -> list[tuple[str, np.ndarray]]:
    base = shared_dir() / "speech" / folder
    lines = (base / "manifest.jsonl").read_text().splitlines()
    return [(entry["text"], load(base / entry["audio"])) for entry in map(json.loads, lines)]


def load(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    assert rate == LISTEN_RATE
    return audio


def energy_bounds_ms(audio: np.ndarray) -> tuple[float, float]:
    """Where sound rises 10 dB over the recording's noise floor, for at least 30 ms: its own quiet excluded."""
    frame = LISTEN_RATE // 100
    n = len(audio) // frame
    level_db = 10 * np.log10(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-10)
    loud = level_db > np.percentile(level_db, 5) + 10
    runs = np.flatnonzero(np.convolve(loud, np.ones(3), mode="valid") == 3)
    return runs[0] * 10.0, (runs[-1] + 3) * 10.0


def probabilities(vad: SileroVad, audio: np.ndarray, timings: list[float]) -> np.ndarray:
    state = vad.new_state()
    out = []
    for start in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        began = time.perf_counter()
        out.append(vad.speech_probability(audio[start : start + FRAME_SAMPLES], state))
        timings.append(time.perf_counter() - began)
    return np.array(out)


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad.from_source()


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn.from_source()


def test_silero_finds_utterance_boundaries_in_added_silence(vad: SileroVad) -> None:
    # LJ Speech: clean studio reads, trimmed close to the voice, so the energy bounds are tight.
    silence = np.zeros(SILENCE_MS * LISTEN_RATE // 1000, dtype=np.float32)
    timings: list[float] = []
    errors = []
    for text, audio in recordings("ljspeech_en"):
        probs = probabilities(vad, np.concatenate([silence, audio, silence]), timings)
        onset_ms, offset_ms = energy_bounds_ms(audio)
        true_start, true_end = SILENCE_MS + onset_ms, SILENCE_MS + offset_ms
        voiced = np.flatnonzero(probs > 0.5)
        first_ms, last_ms = voiced[0] * FRAME_MS, (voiced[-1] + 1) * FRAME_MS
        errors.append((first_ms - true_start, last_ms - true_end))
        assert abs(first_ms - true_start) <= BOUNDARY_TOLERANCE_MS, text
        assert abs(last_ms - true_end) <= BOUNDARY_TOLERANCE_MS, text
        inside = probs[int(true_start // FRAME_MS) : int(true_end // FRAME_MS)]
        assert np.mean(inside > 0.5) > 0.85, text  # pauses between phrases may dip
        lead = probs[: SILENCE_MS // FRAME_MS - 1]
        tail = probs[int((SILENCE_MS + len(audio) * 1000 / LISTEN_RATE + BOUNDARY_TOLERANCE_MS) // FRAME_MS) + 1 :]
        assert lead.max() < 0.1 and tail.max() < 0.1, text
    start_err, end_err = np.array(errors).T
    print(
        f"\nsilero: {len(timings)} frames, median {np.median(timings) * 1e3:.3f} ms/frame "
        f"(p95 {np.percentile(timings, 95) * 1e3:.3f}); onset error {start_err.min():+.0f}..{start_err.max():+.0f} ms, "
        f"offset error {end_err.min():+.0f}..{end_err.max():+.0f} ms"
    )


def test_silero_streams_keep_separate_state(vad: SileroVad) -> None:
    (_, first), (_, second) = recordings("ljspeech_en")[:2]
    n = min(len(first), len(second)) // FRAME_SAMPLES * FRAME_SAMPLES
    alone = [probabilities(vad, audio[:n], []) for audio in (first, second)]
    states = [vad.new_state(), vad.new_state()]
    interleaved: list[list[float]] = [[], []]
    for start in range(0, n, FRAME_SAMPLES):
        for i, audio in enumerate((first, second)):
            interleaved[i].append(vad.speech_probability(audio[start : start + FRAME_SAMPLES], states[i]))
    np.testing.assert_allclose(interleaved[0], alone[0], atol=1e-6)
    np.testing.assert_allclose(interleaved[1], alone[1], atol=1e-6)


def test_smart_turn_scores_complete_commands_above_cut_ones(smart_turn: SmartTurn) -> None:
    commands = recordings("commands_en")
    timings = []
    complete, cut = [], []
    for i, (_, audio) in enumerate(commands):
        began = time.perf_counter()
        complete.append(smart_turn.turn_complete_probability(audio))
        timings.append(time.perf_counter() - began)
        # Cut somewhere in the first 40-60 % (spread over the set), mid-phrase with no trailing pause.
        fraction = 0.4 + 0.2 * i / (len(commands) - 1)
        cut.append(smart_turn.turn_complete_probability(audio[: int(len(audio) * fraction)]))
    print(
        f"\nsmart turn: median {np.median(timings) * 1e3:.1f} ms/call; "
        f"complete mean {np.mean(complete):.3f} (min {np.min(complete):.3f}), cut mean {np.mean(cut):.3f}"
    )
    assert np.mean(complete) > 0.7
    assert np.mean(cut) < np.mean(complete) - 0.1


def test_log_mel_matches_pipecats_reference() -> None:
    # Pipecat's numpy copy of Whisper's feature extractor, loaded as a lone file: the pipecat package is never imported.
    path = resolve("package:pipecat-ai/pipecat/audio/turn/smart_turn/_whisper_features.py")
    spec = importlib.util.spec_from_file_location("pipecat_whisper_features", path)
    assert spec is not None and spec.loader is not None
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    (_, short), (_, longer) = recordings("commands_en")[:2]
    for audio in (short, np.tile(longer, 4)):  # padded at the start, and trimmed to the last 8 s
        window = fit_window(audio)
        np.testing.assert_array_equal(log_mel(window), reference.compute_whisper_log_mel_features(window))
