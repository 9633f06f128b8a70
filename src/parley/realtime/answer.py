"""A generation's output, produced in its own task ahead of whoever sends it.

The model's text streams in; with a speaker it is cut into clauses and each is synthesized while the model keeps
writing. Tool calls come after the text (its speech finished first) as the engine's ``ToolCallDelta``s; text
after a call has no item to go into and is dropped. What is ready waits in a queue, so an answer prepared early
(see :mod:`.early_answer`) can be handed over to the response that sends it without losing or repeating anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..engines.llm import GenerationStats, TextStream, ToolCallDelta
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
# The longest the model is held while the first piece is synthesized (see AnswerStream._say).
FIRST_PIECE_HOLD_S = 0.2


class AnswerStream:
    def __init__(self, stream: TextStream, speaker: Speaker | None) -> None:
        self.speaker = speaker
        self.stats: GenerationStats = stream.stats
        self.first_token_at: float | None = None  # monotonic time of the model's first text
        self._stream = stream
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task = asyncio.create_task(self._produce(), name="answer")

    async def pieces(self) -> AsyncIterator[Piece | ToolCallDelta]:
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
            events = aiter(self._stream)
            if self.speaker is None:
                async for event in events:
                    self._mark_first_token()
                    self._queue.put_nowait(event if isinstance(event, ToolCallDelta) else TextDelta(event))
                    if isinstance(event, ToolCallDelta):
                        break
            else:
                await self._speak(self.speaker, events)
            async for event in events:  # only calls follow the first call
                if isinstance(event, ToolCallDelta):
                    self._queue.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, which decides how the response ends
            self._queue.put_nowait(_Failed(exc))
        finally:
            await self._stream.aclose()
            self._queue.put_nowait(_END)

    async def _speak(self, speaker: Speaker, events: AsyncIterator[str | ToolCallDelta]) -> None:
        """Speak the text up to the first call (which is queued after the speech), or to the end."""
        chunker = ClauseChunker(speaker.first_piece_words)
        call: ToolCallDelta | None = None
        async for event in events:
            self._mark_first_token()
            if isinstance(event, ToolCallDelta):
                call = event
                break
            chunker.add(event)
            await self._say_complete_pieces(speaker, chunker)
        await self._say_complete_pieces(speaker, chunker, final=True)
        if tail := await speaker.finish():
            self._queue.put_nowait(AudioTail(tail))
        if call is not None:
            self._queue.put_nowait(call)

    async def _say_complete_pieces(self, speaker: Speaker, chunker: ClauseChunker, *, final: bool = False) -> None:
        """Speak each piece the text so far completes, each cut short enough to be ready in time."""
        while (clause := chunker.next_piece(speaker.chars_in_time(time.monotonic()), final=final)) is not None:
            self._queue.put_nowait(await self._say(speaker, clause))

    async def _say(self, speaker: Speaker, clause: str) -> SpokenClause:
        """Synthesize a clause; the first with the model held for at most ``FIRST_PIECE_HOLD_S``.

        On two cores the model's next tokens would otherwise take a core from the synthesis (measured on the
        fast profile: a four-word piece took 142 ms instead of 90 ms), and those tokens are not needed until the
        first piece has been played. A slow voice (Kokoro on two cores takes about a second for a first piece)
        is not waited for: the next piece's words must still be written in time to follow the first."""
        if speaker.transcript:
            return await speaker.say(clause)
        saying = asyncio.ensure_future(speaker.say(clause))
        try:
            self._stream.hold.hold()
            try:
                await asyncio.wait({saying}, timeout=FIRST_PIECE_HOLD_S)
            finally:
                self._stream.hold.release()
            return await saying
        except asyncio.CancelledError:
            saying.cancel()
            raise

    def _mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
