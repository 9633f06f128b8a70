"""Speak a response clause by clause: synthesis in a worker thread, audio encoded for the session's format.

Each spoken clause keeps where its words end in the response's audio, so a truncation at ``audio_end_ms``
can cut the transcript to the words the listener actually heard. The speaker also keeps how fast its voice has
synthesized so far, so the next clause can be cut short enough to be ready before the audio already made has
been played (:meth:`Speaker.chars_in_time`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from ..engines.speech import SpeechChunk, SpeechSynthesizer

# Encodes 24 kHz int16 for the session's format; ``last`` flushes what the resampler still holds.
Encoder = Callable[[np.ndarray, bool], bytes]
# How long before the audio made so far runs out the next clause should be ready: its way to the client, and
# the model's next token, which may be what completes the clause.
PACING_MARGIN_MS = 150


@dataclass(frozen=True)
class SpokenClause:
    text: str  # as it joins the transcript (with its leading space when it is not the first)
    audio: bytes  # in the session's output format
    duration_ms: int
    word_ends: list[tuple[int, int]]  # (end_ms from the response's audio start, transcript length so far)


@dataclass(frozen=True)
class VoiceSettings:
    """Everything that decides how a speaker sounds: two speakers with equal settings say a text alike."""

    voice: str
    speed: float
    language: str | None
    audio_format: str


class Speaker:
    def __init__(
        self, synthesizer: SpeechSynthesizer, settings: VoiceSettings, encoder: Encoder, pool: Executor
    ) -> None:
        self.settings = settings
        self._synthesizer = synthesizer
        self._encoder = encoder
        self._pool = pool
        self.spoken_ms = 0
        self.transcript = ""
        self._first_ready_at: float | None = None  # monotonic time the first clause's audio was ready
        self._synthesis_s = 0.0
        self._synthesized_chars = 0

    @property
    def first_piece_words(self) -> int:
        """After how many words the answer's first piece may be cut, for this voice and language."""
        return self._synthesizer.first_piece_words(self.settings.voice, self.settings.language)

    def chars_in_time(self, now: float) -> int | None:
        """The longest next clause (in characters) this voice can synthesize before a real-time player, started
        when the first clause was ready, has played all the audio made so far; None before the first clause.

        Synthesis time is taken as proportional to the text at the rate measured on this answer's clauses so far
        (which includes the engine's fixed cost per call, so it errs on the safe side for longer clauses), and
        counts the wait for a worker: under load it is what the next clause will take too."""
        if self._first_ready_at is None or self._synthesis_s <= 0 or self._synthesized_chars == 0:
            return None
        queued_ms = self.spoken_ms - (now - self._first_ready_at) * 1000
        ms_per_char = self._synthesis_s * 1000 / self._synthesized_chars
        return max(0, int((queued_ms - PACING_MARGIN_MS) / ms_per_char))

    async def say(self, clause: str) -> SpokenClause:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        chunk, audio = await loop.run_in_executor(self._pool, self._synthesize, clause)
        ready = time.monotonic()
        self._synthesis_s += ready - started
        self._synthesized_chars += len(clause)
        if self._first_ready_at is None:
            self._first_ready_at = ready
        text = clause if not self.transcript else " " + clause
        offset_ms, offset_chars = self.spoken_ms, len(self.transcript) + (len(text) - len(clause))
        word_ends = []
        position = 0
        for word in chunk.words:
            found = clause.find(word.text, position)
            position = found + len(word.text) if found >= 0 else position
            word_ends.append((offset_ms + word.end_ms, offset_chars + position))
        duration_ms = chunk.duration_ms
        self.spoken_ms += duration_ms
        self.transcript += text
        return SpokenClause(text, audio, duration_ms, word_ends)

    async def finish(self) -> bytes:
        """The last few milliseconds the output resampler held back (empty for pcm16)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._encoder, np.zeros(0, dtype=np.int16), True)

    def _synthesize(self, clause: str) -> tuple[SpeechChunk, bytes]:
        settings = self.settings
        chunk = self._synthesizer.synthesize(clause, settings.voice, settings.speed, settings.language)
        return chunk, self._encoder(chunk.audio, False)
