"""Small fakes for a response's unit tests: a model that replays fixed deltas, a session that records events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from parley.engines.llm import GenerationRequest, GenerationStats, TextStream, ToolCallDelta
from parley.ids import new_id
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
