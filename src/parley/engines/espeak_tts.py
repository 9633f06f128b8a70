"""espeak-ng formant synthesis: the voice for every language the neural voices lack (German, Dutch, ...).

The library and its data come from the ``espeakng-loader`` wheel (already a dependency of kokoro-onnx), so
nothing needs apt. It speaks at 22.05 kHz; the audio is resampled to 24 kHz with soxr.

Word timings are espeak-ng's own: it reports a word event (character position, audio position) as it speaks
each word. A word ends where the next one starts, less any pause after it (the last sample above a quiet
threshold); the last word ends where the speech does.

This module also holds the helpers the other engines that phonemize with espeak-ng (Piper, Kokoro) share:
resampling to 24 kHz and placing words on timed phonemes.

espeak-ng keeps global state, so one ``EspeakSynthesizer`` per process (:func:`load_espeak`) serializes its
calls with a lock; each call takes milliseconds. kokoro-onnx's phonemizer loads its own copy of the library
and Piper links its own, so neither shares this state.
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import re
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import espeakng_loader
import numpy as np
import onnxruntime as ort
import soxr

from ..voice import voices
from .speech import SPEAK_RATE, SpeechChunk, WordTiming

__all__ = [
    "EspeakSynthesizer",
    "TimedPhoneme",
    "load_espeak",
    "quiet_session_options",
    "text_words",
    "to_speak_rate",
    "words_from_phonemes",
]

_WORD_RE = re.compile(r"\S+")
_QUIET = 0.02  # of full scale: quieter than this is a pause between words
_DEFAULT_WPM = 175  # espeak-ng's normal rate
_MIN_WPM, _MAX_WPM = 80, 450  # the rates espeak-ng accepts

# espeak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_RATE = 1


# --- helpers shared by the engines ------------------------------------------------------------------


class TimedPhoneme(NamedTuple):
    """One phoneme symbol (or space or punctuation) and the samples it spans."""

    symbol: str
    start: int
    end: int


def to_speak_rate(audio: np.ndarray, rate: int) -> np.ndarray:
    """``audio`` (float in [-1, 1] or int16) at ``rate`` as int16 at 24 kHz."""
    if audio.dtype != np.int16:
        audio = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    if rate == SPEAK_RATE or not len(audio):
        return audio
    return soxr.resample(audio, rate, SPEAK_RATE)


def quiet_session_options() -> ort.SessionOptions:
    """onnxruntime options for a model sharing a few cores with the others: worker threads sleep instead of
    spinning between runs (about 25% faster when the cores are busy, the same when idle)."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def text_words(text: str) -> list[re.Match[str]]:
    """The words of ``text``: whitespace-separated tokens holding a letter or digit, punctuation attached."""
    return [m for m in _WORD_RE.finditer(text) if any(c.isalnum() for c in m[0])]


def _ms(sample: int, rate: int) -> int:
    return round(sample * 1000 / rate)


def _is_speech(symbol: str) -> bool:
    # IPA symbols, stress and length marks are letters, modifier letters or combining marks; spaces,
    # punctuation and Piper's ^ $ _ markers are not.
    return bool(symbol) and unicodedata.category(symbol[0])[0] in "LM"


def words_from_phonemes(text: str, phonemes: Sequence[TimedPhoneme], rate: int) -> list[WordTiming]:
    """Place the words of ``text`` on audio whose phonemes (espeak-ng IPA, words split by spaces) are timed.

    When espeak-ng produced as many phoneme words as the text has words, they pair up exactly. Otherwise (a
    number read as several words, French liaison joining two) each text word gets a run of the spoken phonemes
    in proportion to its letters and digits, so the timing stays monotonic and close.
    """
    words = text_words(text)
    spoken = [p for p in phonemes if _is_speech(p.symbol)]
    if not words or not spoken:
        return []
    groups: list[list[TimedPhoneme]] = []
    previous_speech = False
    for phoneme in phonemes:
        speech = _is_speech(phoneme.symbol)
        if speech and not previous_speech:
            groups.append([])
        if speech:
            groups[-1].append(phoneme)
        previous_speech = speech
    if len(groups) == len(words):
        runs = groups
    else:
        runs = _proportional_runs(spoken, [sum(c.isalnum() for c in w[0]) for w in words])
    timings: list[WordTiming] = []
    last_end = 0
    for word, run in zip(words, runs, strict=True):
        start, end = (run[0].start, run[-1].end) if run else (last_end, last_end)
        timings.append(WordTiming(word[0], _ms(start, rate), _ms(end, rate)))
        last_end = end
    return timings


def _proportional_runs(spoken: list[TimedPhoneme], weights: list[int]) -> list[list[TimedPhoneme]]:
    """Split ``spoken`` into one run per weight, sized by weight, each non-empty while phonemes last."""
    total, count, n = sum(weights), len(spoken), len(weights)
    runs: list[list[TimedPhoneme]] = []
    begin = cumulative = 0
    for i, weight in enumerate(weights):
        cumulative += weight
        end = round(count * cumulative / total)
        if count >= n:  # room for every word: at least one phoneme each
            end = min(max(end, begin + 1), count - (n - i - 1))
        runs.append(spoken[begin:end])
        begin = max(begin, end)
    return runs


# --- the espeak-ng engine ---------------------------------------------------------------------------


class _Event(ctypes.Structure):
    _fields_ = (  # espeak_EVENT
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # characters from the start of the text, 1-based
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_void_p),
    )


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class EspeakSynthesizer:
    """espeak-ng through ctypes. Thread-safe: calls are serialized (espeak-ng has global state)."""

    def __init__(self, library: str, data_dir: Path) -> None:
        self._lock = threading.Lock()
        self._lib = ctypes.CDLL(library)
        self._lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        # espeak_Initialize wants the folder holding espeak-ng-data.
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_dir.parent).encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialize with data at {data_dir}")
        self._rate = rate
        self._languages = _languages(data_dir)
        self._samples: list[np.ndarray] = []
        self._word_events: list[tuple[int, int]] = []  # (character index, ms)
        self._callback = _Callback(self._on_audio)  # kept referenced: espeak-ng holds only the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    @property
    def id(self) -> str:
        return "espeak"

    def languages(self) -> frozenset[str]:
        return self._languages

    def first_piece_words(self, voice: str, language: str | None = None) -> int:
        return 3  # formant synthesis: milliseconds per word

    def synthesize(self, text: str, voice: str, speed: float = 1.0, language: str | None = None) -> SpeechChunk:
        """Speak ``text``. ``speed`` maps to words per minute; espeak-ng's floor of 80 makes 0.46 the slowest."""
        name = voices.espeak_voice(voice, language)
        encoded = text.encode()
        wpm = min(max(round(_DEFAULT_WPM * speed), _MIN_WPM), _MAX_WPM)
        with self._lock:
            self._samples, self._word_events = [], []
            self._set_voice(name)
            self._lib.espeak_SetParameter(_RATE, wpm, 0)
            status = self._lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if status != 0:
                raise RuntimeError(f"espeak-ng failed to synthesize (status {status})")
            samples, events = self._samples, self._word_events
        audio = np.concatenate(samples) if samples else np.zeros(0, np.int16)
        words = self._word_timings(text, audio, events)
        return SpeechChunk(to_speak_rate(audio, self._rate), words)

    def _set_voice(self, name: str) -> None:
        tag, plus, variant = name.partition("+")
        # espeak-ng knows some regions (en-gb, pt-br) but not most (de-de): then the bare language.
        for candidate in (name, tag.split("-")[0] + plus + variant):
            if self._lib.espeak_SetVoiceByName(candidate.encode()) == 0:
                return
        raise ValueError(f"espeak-ng has no voice {name!r}")

    def _on_audio(self, wav: ctypes._Pointer, count: int, events: ctypes._Pointer) -> int:
        if count > 0 and wav:
            self._samples.append(np.ctypeslib.as_array(wav, (count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_WORD:
                self._word_events.append((events[i].text_position - 1, events[i].audio_position))
            i += 1
        return 0  # go on

    def _word_timings(self, text: str, audio: np.ndarray, events: list[tuple[int, int]]) -> list[WordTiming]:
        words = text_words(text)
        if not words:
            return []
        word_starts = [w.start() for w in words]
        starts: list[int | None] = [None] * len(words)  # ms of each word's first event (a number raises several)
        for position, ms in events:
            i = bisect.bisect_right(word_starts, position) - 1
            if i >= 0 and position < words[i].end() and starts[i] is None:
                starts[i] = ms
        if starts[0] is None:
            starts[0] = 0
        # A word with no event of its own (espeak-ng says "tout le monde" as one) shares the span of the one before.
        anchors = [(i, ms) for i, ms in enumerate(starts) if ms is not None]
        duration_ms = _ms(len(audio), self._rate)
        timings: list[WordTiming] = []
        for (i, ms), (following, next_ms) in zip(anchors, [*anchors[1:], (len(words), duration_ms)], strict=True):
            limit = min(next_ms, duration_ms)
            begin = min(max(ms, timings[-1].end_ms if timings else 0), limit)
            end = max(self._speech_end(audio, begin, limit), begin)
            timings += _spread([w[0] for w in words[i:following]], begin, end)
        return timings

    def _speech_end(self, audio: np.ndarray, start_ms: int, limit_ms: int) -> int:
        """The last moment in [start, limit) that is not a pause, in ms."""
        begin, stop = start_ms * self._rate // 1000, limit_ms * self._rate // 1000
        loud = np.flatnonzero(np.abs(audio[begin:stop].astype(np.int32)) > _QUIET * 32767)
        return _ms(begin + int(loud[-1]) + 1, self._rate) if len(loud) else start_ms


def _spread(words: list[str], start: int, end: int) -> list[WordTiming]:
    """Share [start, end] ms between ``words`` in proportion to their letters and digits."""
    weights = [sum(c.isalnum() for c in word) for word in words]
    total, done, timings = sum(weights), 0, []
    for word, weight in zip(words, weights, strict=True):
        begin = start + (end - start) * done // total
        done += weight
        timings.append(WordTiming(word, begin, start + (end - start) * done // total))
    return timings


def _languages(data_dir: Path) -> frozenset[str]:
    # Voice definitions live at espeak-ng-data/lang/<family>/<tag>, e.g. lang/gmw/de, lang/gmw/en-GB or
    # lang/sit/cmn: ISO 639-1 codes, and 639-3 where there is none (cmn, yue, haw).
    return frozenset(
        tag
        for path in (data_dir / "lang").rglob("*")
        if path.is_file() and 2 <= len(tag := path.name.split("-")[0].lower()) <= 3
    )


@functools.cache
def load_espeak() -> EspeakSynthesizer:
    """The process's espeak-ng engine (created once)."""
    return EspeakSynthesizer(espeakng_loader.get_library_path(), Path(espeakng_loader.get_data_path()))
