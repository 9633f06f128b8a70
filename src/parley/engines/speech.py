"""The speech stages' interfaces: voice activity, end of turn, recognition and synthesis.

Every method here is blocking CPU work: callers run it in a worker thread, never on the event loop.
Audio crosses these interfaces as numpy arrays: float32 mono at 16 kHz into the listening stages,
int16 mono at 24 kHz out of synthesis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

LISTEN_RATE = 16_000  # what VAD, Smart Turn and Whisper take
SPEAK_RATE = 24_000  # what synthesis returns (the Realtime API's pcm16 rate)


class VadState(Protocol):
    """A model's recurrent state for one audio stream (one per session)."""


class VoiceActivityModel(Protocol):
    @property
    def frame_samples(self) -> int:
        """Samples at 16 kHz per call of ``speech_probability`` (512 for Silero)."""
        ...

    def new_state(self) -> VadState: ...

    def speech_probability(self, frame: np.ndarray, state: VadState) -> float:
        """P(speech) for one frame of ``frame_samples`` float32 samples; updates ``state``."""
        ...


class EndOfTurnModel(Protocol):
    def turn_complete_probability(self, audio: np.ndarray) -> float:
        """P(the speaker has finished their turn), given the turn's audio so far (16 kHz float32)."""
        ...


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None  # ISO-639-1, as detected (or as forced)
    audio_seconds: float


class SpeechRecognizer(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def multilingual(self) -> bool: ...

    def transcribe(self, audio: np.ndarray, language: str | None = None, prompt: str | None = None) -> Transcript:
        """Transcribe a whole utterance (16 kHz float32). ``language`` None means detect it."""
        ...


@dataclass(frozen=True)
class WordTiming:
    text: str
    start_ms: int  # from the start of this chunk's audio
    end_ms: int


@dataclass(frozen=True)
class SpeechChunk:
    """Synthesized audio for one piece of text, with where each word falls in it."""

    audio: np.ndarray  # int16 mono at SPEAK_RATE
    words: list[WordTiming] = field(default_factory=list)

    @property
    def duration_ms(self) -> int:
        return len(self.audio) * 1000 // SPEAK_RATE


class SpeechSynthesizer(Protocol):
    @property
    def id(self) -> str: ...

    def languages(self) -> frozenset[str]:
        """ISO-639-1 codes this synthesizer can speak."""
        ...

    def synthesize(self, text: str, voice: str, speed: float = 1.0, language: str | None = None) -> SpeechChunk:
        """Speak ``text`` (a clause or sentence) with an OpenAI voice name (mapped to a local voice)."""
        ...

    def first_piece_words(self, voice: str, language: str | None = None) -> int:
        """After how many words an answer's first spoken piece may be cut (see :mod:`parley.voice.clauses`).

        Fewer words are heard sooner, but the next piece must be written and synthesized while they play: a
        voice that synthesizes many times faster than real time can start on fewer words than a slow one."""
        ...
