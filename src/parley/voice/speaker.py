"""Speak a response clause by clause: synthesis in a worker thread, audio encoded for the session's format.

Each spoken clause keeps where its words end in the response's audio, so a truncation at ``audio_end_ms``
can cut the transcript to the words the listener actually heard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from ..engines.speech import SpeechChunk, SpeechSynthesizer

# Encodes 24 kHz int16 for the session's format; ``last`` flushes what the resampler still holds.
Encoder = Callable[[np.ndarray, bool], bytes]


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

    @property
    def first_piece_words(self) -> int:
        """After how many words the answer's first piece may be cut, for this voice and language."""
        return self._synthesizer.first_piece_words(self.settings.voice, self.settings.language)

    async def say(self, clause: str) -> SpokenClause:
        loop = asyncio.get_running_loop()
        chunk, audio = await loop.run_in_executor(self._pool, self._synthesize, clause)
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
