"""Whisper recognition on real recorded speech: word error rate, language detection, silence, model assembly.

Uses the packaged models (requirements/models-speech-recognition.txt) and the shared recordings. Per-call
timings are printed (run with ``-s``), not asserted: the machines running tests are shared.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from parley import models
from parley.bench.wer import corpus_wer, normalize, wer
from parley.engines.speech import LISTEN_RATE, Transcript
from parley.engines.whisper import (
    BASE,
    TINY_EN,
    WhisperRecognizer,
    load_recognizer,
    model_dir,
    window_frames,
    without_repetition,
)
from tests.conformance.paths import shared_dir
from tests.support.noise import NON_SPEECH, pink_noise

SPEECH = shared_dir() / "speech"


@dataclass(frozen=True)
class Clip:
    id: str
    audio: np.ndarray
    text: str
    language: str


def _clips(folder: str, count: int) -> list[Clip]:
    """The first ``count`` utterances of a folder, in manifest order (no picking)."""
    lines = (SPEECH / folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines()[:count]
    clips = []
    for row in map(json.loads, lines):
        audio, rate = sf.read(SPEECH / folder / row["audio"], dtype="float32")
        assert rate == LISTEN_RATE
        clips.append(Clip(row["id"], audio, row["text"], row["lang"]))
    return clips


def _timed(recognizer: WhisperRecognizer, audio: np.ndarray, label: str, **kwargs: str) -> Transcript:
    start = time.perf_counter()
    result = recognizer.transcribe(audio, **kwargs)
    elapsed = time.perf_counter() - start
    print(f"{recognizer.id} {label}: {len(audio) / LISTEN_RATE:.2f} s audio in {elapsed:.2f} s -> {result.text!r}")
    return result


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parley-cache")


# --- normaliser -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("en", "Set Bed Light to 50%, 1,000 times!", "set bed light to fifty percent one thousand times"),
        ("en", "What's the weather like in New York?", "what's the weather like in new york"),
        (
            "fr",
            "Minuteur 71 secondes, 3000 ou 280000 ?",
            "minuteur soixante et onze secondes trois mille ou deux cent quatre vingt mille",
        ),
        ("fr", "Déverrouille la Porte d'entrée à 80 %", "déverrouille la porte d'entrée à quatre vingts pour cent"),
        ("pt", "casa dos 20 anos, 1250 dólares", "casa dos vinte anos mil duzentos e cinquenta dólares"),
    ],
)
def test_normaliser(language: str, text: str, expected: str) -> None:
    assert normalize(text, language) == expected


# --- model files ----------------------------------------------------------------------------------


def test_base_folder_is_assembled_once_and_reused(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = model_dir(BASE, cache_dir)
    joined = folder.parent / "joined"
    assert os.readlink(folder / "model.bin") == "../joined"
    assert (folder / "model.bin").stat().st_size == joined.stat().st_size
    assert {p.name for p in folder.iterdir()} == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    before = joined.stat()

    # A later start neither re-hashes nor rewrites model.bin, and repairs a link that went stale.
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(folder / "missing.json")
    monkeypatch.setattr(models.hashlib, "sha256", lambda: pytest.fail("model.bin was hashed again"))
    assert model_dir(BASE, cache_dir) == folder
    after = joined.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert json.loads((folder / "config.json").read_text())["lang_ids"]


def test_tiny_en_is_the_packaged_folder() -> None:
    assert (model_dir(TINY_EN) / "model.bin").is_file()


def test_unknown_recognizer_is_refused() -> None:
    with pytest.raises(ValueError, match="whisper-base"):
        load_recognizer("whisper-large")


def test_recognizer_is_loaded_once_per_process(cache_dir: Path) -> None:
    tiny = load_recognizer(TINY_EN)
    assert load_recognizer(TINY_EN) is tiny
    assert (tiny.id, tiny.multilingual) == (TINY_EN, False)
    base = load_recognizer(BASE, cache_dir)
    assert (base.id, base.multilingual) == (BASE, True)


# --- accuracy on real speech ----------------------------------------------------------------------

# Bounds sit above what was measured on these same clips (2 cores, int8) with a margin for CPU differences.
# commands_* are short requests on consumer microphones (hard); ljspeech and fleurs are clean read speech.
WER_CASES = [
    # recognizer, folder, clips, max corpus WER, max clips detected as another language
    pytest.param(TINY_EN, "commands_en", 6, 0.30, 0, id="tiny.en-commands_en"),
    pytest.param(TINY_EN, "ljspeech_en", 4, 0.12, 0, id="tiny.en-ljspeech_en"),
    pytest.param(BASE, "commands_en", 6, 0.35, 0, id="base-commands_en"),
    pytest.param(BASE, "ljspeech_en", 4, 0.12, 0, id="base-ljspeech_en"),
    # "pause" is English too: base hears it as English, so one clip may come back detected as "en".
    pytest.param(BASE, "commands_fr", 6, 0.55, 1, id="base-commands_fr"),
    pytest.param(BASE, "fleurs_pt", 4, 0.40, 0, id="base-fleurs_pt"),
]


@pytest.mark.parametrize(("name", "folder", "count", "max_wer", "max_misdetected"), WER_CASES)
def test_word_error_rate_and_detected_language(
    name: str, folder: str, count: int, max_wer: float, max_misdetected: int, cache_dir: Path
) -> None:
    recognizer = load_recognizer(name, cache_dir)
    clips = _clips(folder, count)
    results = []
    for clip in clips:
        result = _timed(recognizer, clip.audio, clip.id)
        print(
            f"    WER {wer(clip.text, result.text, clip.language):.2f}, language {result.language}, ref {clip.text!r}"
        )
        assert result.audio_seconds == pytest.approx(len(clip.audio) / LISTEN_RATE)
        results.append(result)
    language = clips[0].language
    score = corpus_wer([c.text for c in clips], [r.text for r in results], language)
    print(f"{name} {folder}: corpus WER {score:.3f} over {count} clips")
    assert score <= max_wer
    assert sum(r.language != language for r in results) <= max_misdetected


def test_forced_language_and_prompt(cache_dir: Path) -> None:
    (clip,) = _clips("commands_fr", 1)
    result = _timed(
        load_recognizer(BASE, cache_dir), clip.audio, f"{clip.id} forced fr", language="fr", prompt="Rideaux."
    )
    assert result.language == "fr"
    assert normalize(result.text, "fr").endswith("les rideaux")
    # The English-only model answers in English whatever it is asked.
    assert _timed(load_recognizer(TINY_EN), clip.audio, f"{clip.id} asked fr", language="fr").language == "en"


# --- the encoder window -------------------------------------------------------------------------


def test_window_is_the_turn_plus_three_seconds_in_whole_seconds_at_most_thirty() -> None:
    assert window_frames(1) == 400
    assert window_frames(LISTEN_RATE) == 400
    assert window_frames(LISTEN_RATE + 1) == 500
    assert window_frames(int(2.12 * LISTEN_RATE)) == 600
    assert window_frames(27 * LISTEN_RATE) == 3000
    assert window_frames(60 * LISTEN_RATE) == 3000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Never mind. Never mind. Never mind. Never", "Never mind."),
        ("Lock the front door. Lock the front door.", "Lock the front door."),
        ("Run party time Run party time Run party time", "Run party time"),
        ("Yes. Yes.", "Yes."),
        ("That is that.", "That is that."),
        ("Set a timer for five minutes.", "Set a timer for five minutes."),
        ("Two, four, two, five.", "Two, four, two, five."),
        ("", ""),
    ],
)
def test_a_transcript_read_twice_is_cut_to_one_reading(text: str, expected: str) -> None:
    assert without_repetition(text) == expected


class _EncodeSpy:
    """Records the frames of each encoder window a recognizer asks for (the real encoder still runs)."""

    def __init__(self, recognizer: WhisperRecognizer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.frames: list[int] = []
        encode = recognizer._encode

        def spy(audio: np.ndarray, frames: int) -> object:
            self.frames.append(frames)
            return encode(audio, frames)

        monkeypatch.setattr(recognizer, "_encode", spy)


@pytest.mark.parametrize("name", [TINY_EN, BASE])
def test_a_short_turn_is_encoded_once_in_a_short_window(
    name: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recognizer = load_recognizer(name, cache_dir)
    (clip,) = [c for c in _clips("commands_en", 2) if c.id == "en-lock_the_Front_Door"]
    spy = _EncodeSpy(recognizer, monkeypatch)
    result = _timed(recognizer, clip.audio, clip.id)
    assert spy.frames == [600]
    assert (normalize(result.text), result.language) == ("lock the front door", "en")


def test_an_unsure_language_is_detected_again_in_the_full_window(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = load_recognizer(BASE, cache_dir)
    (clip,) = _clips("commands_fr", 1)
    spy = _EncodeSpy(base, monkeypatch)
    detect = base._detect_language
    answers = iter([("en", 0.3)])  # the short window's answer, made unsure; the full window's is the model's

    monkeypatch.setattr(base, "_detect_language", lambda encoded: next(answers, None) or detect(encoded))
    result = _timed(base, clip.audio, f"{clip.id} unsure at first")
    assert spy.frames == [window_frames(len(clip.audio)), 3000]
    assert result.language == "fr"
    assert normalize(result.text, "fr").endswith("les rideaux")


def test_a_turn_longer_than_one_window_is_transcribed_whole(cache_dir: Path) -> None:
    clips = _clips("ljspeech_en", 5)
    audio = np.concatenate([c.audio for c in clips])
    assert len(audio) > 27 * LISTEN_RATE  # too long for one window with its silence
    result = _timed(load_recognizer(BASE, cache_dir), audio, "five sentences")
    assert result.language == "en"
    assert wer(" ".join(c.text for c in clips), result.text) <= 0.15


# --- non-speech -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [TINY_EN, BASE])
@pytest.mark.parametrize("kind", NON_SPEECH)
def test_silence_and_low_noise_give_empty_transcripts(name: str, kind: str, cache_dir: Path) -> None:
    # Unfiltered, Whisper answers these with "you", "." or "I am not a man."
    result = _timed(load_recognizer(name, cache_dir), NON_SPEECH[kind], kind)
    assert result.text == ""
    assert result.language == ("en" if name == TINY_EN else None)


@pytest.mark.parametrize("name", [TINY_EN, BASE])
def test_quiet_speech_between_silences_is_kept(name: str, cache_dir: Path) -> None:
    (clip,) = [c for c in _clips("commands_en", 5) if c.id == "en-cancel_timer"]
    pad = np.zeros(LISTEN_RATE, dtype=np.float32)
    audio = np.concatenate([pad, clip.audio * 0.1, pad])
    audio += pink_noise(len(audio), 0.002)
    result = _timed(load_recognizer(name, cache_dir), audio, f"{clip.id} quiet, padded, noisy")
    assert normalize(result.text) == "cancel timer"
    assert result.language == "en"


def test_empty_and_malformed_audio(cache_dir: Path) -> None:
    base = load_recognizer(BASE, cache_dir)
    assert base.transcribe(np.zeros(0, dtype=np.float32)) == Transcript(text="", language=None, audio_seconds=0.0)
    assert base.transcribe(np.zeros(0, dtype=np.float32), language="pt").language == "pt"
    with pytest.raises(ValueError, match="mono"):
        base.transcribe(np.zeros((2, LISTEN_RATE), dtype=np.float32))
