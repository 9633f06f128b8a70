"""Moonshine base (the fast profile's recognizer) on real recorded speech: word error rate, silence and noise,
the speech span it is given, the fallback for what it hears as nothing, and its model folder.

Per-call timings are printed (run with ``-s``), not asserted: the machines running tests are shared.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from parley.bench.wer import corpus_wer, normalize
from parley.engines import moonshine
from parley.engines.moonshine import MOONSHINE_BASE_EN, MoonshineRecognizer
from parley.engines.recognizers import RECOGNIZERS, load_recognizer
from parley.engines.silero_vad import SileroVad
from parley.engines.speech import LISTEN_RATE, Transcript
from parley.engines.whisper import TINY_EN
from tests.support.noise import NON_SPEECH, pink_noise
from tests.support.speech import utterance, utterances


def _clips(folder: str, count: int) -> list[tuple[str, np.ndarray, str]]:
    """The first ``count`` utterances of a folder, in manifest order (no picking), at 16 kHz."""
    return [(u.id, sf.read(u.path, dtype="float32")[0], u.text) for u in utterances(folder)[:count]]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parley-cache")


@pytest.fixture(scope="module")
def recognizer(cache_dir: Path) -> MoonshineRecognizer:
    recognizer = load_recognizer(MOONSHINE_BASE_EN, SileroVad.from_source(), cache_dir)
    assert isinstance(recognizer, MoonshineRecognizer)
    return recognizer


def _timed(recognizer: MoonshineRecognizer, audio: np.ndarray, label: str) -> Transcript:
    start = time.perf_counter()
    result = recognizer.transcribe(audio)
    elapsed = time.perf_counter() - start
    print(f"moonshine {label}: {len(audio) / LISTEN_RATE:.2f} s audio in {elapsed:.3f} s -> {result.text!r}")
    return result


def test_the_onnx_folder_is_written_once_and_reused(cache_dir: Path, recognizer: MoonshineRecognizer) -> None:
    folder = moonshine.model_dir(cache_dir)
    assert {p.name for p in folder.iterdir()} == {"encoder_model.onnx", "decoder_model_merged.onnx", "tokenizer.bin"}
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert moonshine.model_dir(cache_dir) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no half-built folder left


def test_one_recognizer_per_process(recognizer: MoonshineRecognizer, cache_dir: Path) -> None:
    assert load_recognizer(MOONSHINE_BASE_EN, SileroVad.from_source(), cache_dir) is recognizer
    assert (recognizer.id, recognizer.multilingual) == (MOONSHINE_BASE_EN, False)
    assert set(RECOGNIZERS) == {MOONSHINE_BASE_EN, TINY_EN, "whisper-base"}
    with pytest.raises(ValueError, match="unknown speech recognizer"):
        load_recognizer("moonshine-huge", SileroVad.from_source(), cache_dir)


# Bounds sit above what was measured on these same clips (2 cores): commands_en 0.35, ljspeech_en 0.04. The
# commands are short requests on consumer microphones (hard): Whisper tiny.en scores 0.20-0.30 on them.
@pytest.mark.parametrize(("folder", "count", "max_wer"), [("commands_en", 8, 0.45), ("ljspeech_en", 4, 0.10)])
def test_word_error_rate(recognizer: MoonshineRecognizer, folder: str, count: int, max_wer: float) -> None:
    clips = _clips(folder, count)
    results = [_timed(recognizer, audio, clip_id) for clip_id, audio, _ in clips]
    assert all(r.language == "en" for r in results)
    assert [r.audio_seconds for r in results] == pytest.approx([len(a) / LISTEN_RATE for _, a, _ in clips])
    score = corpus_wer([text for _, _, text in clips], [r.text for r in results], "en")
    print(f"moonshine {folder}: corpus WER {score:.3f} over {count} clips")
    assert score <= max_wer


def test_long_silence_around_the_words_does_not_hide_them(recognizer: MoonshineRecognizer) -> None:
    # Given the whole stretch, Moonshine answers nothing at all for most of these; it is given the speech span.
    silence = np.zeros(2 * LISTEN_RATE, dtype=np.float32)
    clips = _clips("commands_en", 4)
    heard = [_timed(recognizer, np.concatenate([silence, audio, silence]), clip_id).text for clip_id, audio, _ in clips]
    assert corpus_wer([text for _, _, text in clips], heard, "en") <= 0.35


LOUD_NOISE = (np.random.default_rng(2).standard_normal(2 * LISTEN_RATE) * 0.05).astype(np.float32)


@pytest.mark.parametrize("kind", [*NON_SPEECH, "loud white noise"])
def test_silence_and_noise_give_empty_transcripts(recognizer: MoonshineRecognizer, kind: str) -> None:
    audio = NON_SPEECH.get(kind, LOUD_NOISE)
    assert _timed(recognizer, audio, kind) == Transcript(text="", language="en", audio_seconds=len(audio) / LISTEN_RATE)


def test_quiet_speech_between_silences_is_kept(recognizer: MoonshineRecognizer) -> None:
    (clip,) = [c for c in _clips("commands_en", 5) if c[0] == "en-cancel_timer"]
    pad = np.zeros(LISTEN_RATE, dtype=np.float32)
    audio = np.concatenate([pad, clip[1] * 0.1, pad])
    audio += pink_noise(len(audio), 0.002)
    assert normalize(_timed(recognizer, audio, "quiet, padded, noisy").text) == "cancel timer"


class _Fallback:
    id = "fallback"

    def __init__(self) -> None:
        self.heard: list[int] = []

    def transcribe(self, audio: np.ndarray, language: str | None = None, prompt: str | None = None) -> Transcript:
        self.heard.append(len(audio))
        return Transcript(text="from the fallback", language=language, audio_seconds=len(audio) / LISTEN_RATE)


def test_what_moonshine_hears_as_nothing_goes_to_the_fallback(
    recognizer: MoonshineRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fallback = _Fallback()
    monkeypatch.setattr(recognizer, "_fallback", fallback)
    (clip,) = _clips("commands_en", 1)
    monkeypatch.setattr(recognizer, "_decode", lambda speech: [])  # its first token ends the transcript
    assert recognizer.transcribe(clip[1]).text == "from the fallback"
    assert fallback.heard == [len(clip[1])]  # the whole audio, not the span
    # Audio with no voiced frame never reaches either model.
    assert recognizer.transcribe(NON_SPEECH["pink noise"]).text == ""
    assert fallback.heard == [len(clip[1])]


def test_empty_and_malformed_audio(recognizer: MoonshineRecognizer) -> None:
    assert recognizer.transcribe(np.zeros(0, dtype=np.float32)) == Transcript(text="", language="en", audio_seconds=0.0)
    with pytest.raises(ValueError, match="mono"):
        recognizer.transcribe(np.zeros((2, LISTEN_RATE), dtype=np.float32))


def test_an_unsure_end_before_the_first_word_gives_way_to_the_word() -> None:
    logits = np.zeros(8, dtype=np.float32)
    logits[moonshine._END], logits[5] = 3.0, 2.5  # the end first, but at about 0.4
    assert moonshine._next_token(logits, first=True) == 5
    assert moonshine._next_token(logits, first=False) == moonshine._END
    logits[moonshine._END] = 9.0  # sure of it
    assert moonshine._next_token(logits, first=True) == moonshine._END


def test_a_voiced_word_whose_end_comes_first_is_not_sent_to_the_fallback(
    recognizer: MoonshineRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "six" with 0.1 s before it: Moonshine's likeliest first token is the end, at about 0.5."""
    fallback = _Fallback()
    monkeypatch.setattr(recognizer, "_fallback", fallback)
    audio = sf.read(utterance("digits_en", "6_nicolas_34").path, dtype="float32")[0]
    audio = np.concatenate([np.zeros(LISTEN_RATE // 10, dtype=np.float32), audio])
    assert _timed(recognizer, audio, "six").text
    assert fallback.heard == []
