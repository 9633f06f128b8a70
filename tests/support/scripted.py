"""Small fakes for unit tests of a response or an early answer: a model that replays fixed deltas, a session
that records events, a session that only transcribes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from parley.engines.llm import GenerationRequest, GenerationStats, TextStream, ToolCallDelta
from parley.engines.speech import Transcript
from parley.ids import new_id
from parley.realtime.conversation import Conversation
from parley.realtime.dialect import Dialect
from parley.realtime.items import Item
from parley.realtime.session_config import SessionConfig


class ScriptedModel:
    """Replays a fixed stream of deltas, as a remote endpoint would send them."""

    id = "scripted"

    def __init__(self, deltas: list[str | ToolCallDelta], finish_reason: str = "stop") -> None:
        self._deltas = deltas
        self._finish_reason = finish_reason
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> TextStream:
        self.requests.append(request)
        stats = GenerationStats(prompt_tokens=10)

        async def deltas() -> AsyncIterator[str | ToolCallDelta]:
            for delta in self._deltas:
                stats.completion_tokens += 1
                yield delta
            stats.finish_reason = self._finish_reason  # type: ignore[assignment]

        return TextStream(deltas(), stats)


class RecordingSink:
    dialect = Dialect.GA
    knowledge = None

    def __init__(self, config: SessionConfig) -> None:
        self.events: list[dict[str, Any]] = [
            {"type": "session.created", "event_id": new_id("event"), "session": config.render(Dialect.GA)}
        ]

    def emit(self, type: str, **fields: Any) -> None:
        self.events.append({"type": type, "event_id": new_id("event"), **fields})

    async def transcripts_ready(self, items: list[Item]) -> None:
        return None

    def speaker(self, params: Any, language: str | None) -> None:
        return None

    def item_added(self, item: Item, previous_item_id: str | None) -> None:
        self.emit("conversation.item.added", previous_item_id=previous_item_id, item=item.render(Dialect.GA))

    def item_done(self, item: Item, previous_item_id: str | None) -> None:
        self.emit("conversation.item.done", previous_item_id=previous_item_id, item=item.render(Dialect.GA))

    def report_turn(self, response_id: str, timing: Any) -> None:
        return None


def early_answer_session(transcript: str, model: ScriptedModel, delay_s: float = 0.0) -> Any:
    """Just enough of a session for an ``EarlyAnswer``: a recognizer that hears ``transcript`` after
    ``delay_s``, no transcription settings, an empty conversation, and ``model``. Drafting a response fails the
    test unless the caller replaces ``default_response``."""

    async def transcribe(audio: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        await asyncio.sleep(delay_s)
        return Transcript(transcript, None, len(audio) / 16_000)

    return SimpleNamespace(
        config=SimpleNamespace(transcription=None),
        voice=SimpleNamespace(transcribe=transcribe),
        llm=model,
        conversation=Conversation(),
        default_response=lambda: pytest.fail("an answer was drafted"),
    )
