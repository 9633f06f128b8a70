"""An answer prepared during a pause, before the turn is confirmed over.

When the person pauses (``TurnTracker`` reports ``pause``), the session transcribes the turn so far and starts the
model and the voice on the answer, sending nothing. If the person speaks again, all of it is dropped. If the turn
ends, its transcript becomes the turn's transcript (the audio since the pause is silence by the VAD's own
judgement) and the response takes the prepared answer over only when it would ask the model exactly the same
thing in the same voice; otherwise the answer is dropped and made afresh. So what the person hears is what they
would have heard without the early start, only sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from ..engines.llm import GenerationRequest
from ..engines.speech import Transcript
from ..metrics import EARLY_ANSWERS
from ..voice.speaker import Speaker
from .answer import AnswerStream
from .items import ContentPart, Item

if TYPE_CHECKING:
    from .session import RealtimeSession

log = logging.getLogger(__name__)


class EarlyAnswer:
    def __init__(self, session: RealtimeSession, item_id: str, audio: np.ndarray) -> None:
        settings = session.config.transcription
        language, prompt = (settings.language, settings.prompt) if settings else (None, None)
        self.transcript: asyncio.Task[Transcript] = asyncio.create_task(
            session.voice.transcribe(audio, language, prompt), name=f"early-transcript-{item_id}"
        )
        self.transcript_at: float | None = None  # monotonic time the transcript was ready
        self.transcript.add_done_callback(self._transcribed)
        self._turn_owns_transcript = False
        self._request: GenerationRequest | None = None
        self._answer: AnswerStream | None = None
        self._preparing = asyncio.create_task(self._prepare(session, item_id), name=f"early-answer-{item_id}")

    def commit_turn(self) -> None:
        """The turn was committed at this pause: ``transcript`` is now the committed turn's, and outlives the
        answer (a response cancelled because the caller spoke on still leaves the turn its words)."""
        self._turn_owns_transcript = True

    async def take(self, request: GenerationRequest, speaker: Speaker | None) -> AnswerStream | None:
        """The prepared answer, if it answers ``request`` in ``speaker``'s voice; else None (and it is dropped)."""
        with contextlib.suppress(Exception):
            await asyncio.shield(self._preparing)
        answer, self._answer = self._answer, None
        if answer is None:
            return None
        voice = answer.speaker.settings if answer.speaker else None
        if self._request == request and voice == (speaker.settings if speaker else None):
            EARLY_ANSWERS.labels("used").inc()
            return answer
        EARLY_ANSWERS.labels("stale").inc()
        await answer.close()
        return None

    async def drop(self) -> None:
        """The person went on speaking, or the response ended without it: stop everything prepared."""
        EARLY_ANSWERS.labels("dropped").inc()
        if not self._turn_owns_transcript:
            self.transcript.cancel()
        self._preparing.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._preparing
        if self._answer is not None:
            await self._answer.close()
            self._answer = None

    async def _prepare(self, session: RealtimeSession, item_id: str) -> None:
        transcript = await asyncio.shield(self.transcript)  # cancelling the draft leaves the transcript to drop()
        if not transcript.text.strip():
            return  # a turn without words is not answered (see Response): nothing to prepare
        part = ContentPart(type="input_audio", transcript=transcript.text, language=transcript.language)
        context = [*session.conversation.items, Item(id=item_id, type="message", role="user", content=[part])]
        draft = session.default_response()  # the response this turn would get, were it over now
        self._request = await draft.request_for(context)
        self._answer = AnswerStream(session.llm.generate(self._request), draft.speaker_for(context))

    def _transcribed(self, task: asyncio.Task[Transcript]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.transcript_at = time.monotonic()
