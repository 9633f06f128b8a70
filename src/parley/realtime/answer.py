"""A generation's output, produced in its own task ahead of whoever sends it.

The model's text streams in; with a speaker it is cut into clauses and each is synthesized while the model keeps
writing. What is ready waits in a queue, so an answer prepared early (see :mod:`.early_answer`) can be handed
over to the response that sends it without losing or repeating anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..engines.llm import GenerationStats, TextStream
from ..voice.clauses import ClauseChunker
from ..voice.speaker import Speaker, SpokenClause


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class AudioTail:
    """The last few milliseconds the output resampler held back."""

    audio: bytes


Piece = TextDelta | SpokenClause | AudioTail


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = object()


class AnswerStream:
    def __init__(self, stream: TextStream, speaker: Speaker | None) -> None:
        self.speaker = speaker
        self.stats: GenerationStats = stream.stats
        self.first_token_at: float | None = None  # monotonic time of the model's first text
        self._stream = stream
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task = asyncio.create_task(self._produce(), name="answer")

    async def pieces(self) -> AsyncIterator[Piece]:
        """What the answer produces, in order; raises what the production raised."""
        while (piece := await self._queue.get()) is not _END:
            if isinstance(piece, _Failed):
                raise piece.error
            yield piece  # type: ignore[misc]

    async def close(self) -> None:
        """Stop producing (if still running) and free the model."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _produce(self) -> None:
        try:
            if self.speaker is None:
                async for delta in self._stream:
                    self._mark_first_token()
                    self._queue.put_nowait(TextDelta(delta))
            else:
                await self._speak(self.speaker)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, which decides how the response ends
            self._queue.put_nowait(_Failed(exc))
        finally:
            await self._stream.aclose()
            self._queue.put_nowait(_END)

    async def _speak(self, speaker: Speaker) -> None:
        chunker = ClauseChunker()
        async for delta in self._stream:
            self._mark_first_token()
            for clause in chunker.push(delta):
                self._queue.put_nowait(await speaker.say(clause))
        if rest := chunker.flush():
            self._queue.put_nowait(await speaker.say(rest))
        if tail := await speaker.finish():
            self._queue.put_nowait(AudioTail(tail))

    def _mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
