"""What a live session writes to the database: its row, its items as they are finalised, each response's
usage, its audio minutes. Every write goes through the storage writer; the futures returned let the session
hold back the event that acknowledges a write until it is committed."""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

from ..auth import Principal
from ..realtime.dialect import Dialect
from ..realtime.items import Item
from ..storage import transcripts
from ..storage.transcripts import ItemRecord, SessionOpened
from ..storage.usage import Prices, Tokens
from ..storage.writer import Writer
from .limits import Limiter

# Output audio is counted as OpenAI counts it: 20 tokens per second, so one token is 50 ms.
MS_PER_OUTPUT_AUDIO_TOKEN = 50


class SessionRecorder:
    def __init__(
        self, writer: Writer, principal: Principal, prices: Prices, limiter: Limiter, server: str, instance: str
    ) -> None:
        """``server``: this process's host:port; ``instance``: this run of it."""
        self._writer = writer
        self._server, self._instance = server, instance
        self.principal = principal
        self._prices = prices
        self._limiter = limiter
        self._session_id = ""
        self._order: dict[str, int] = {}
        self.input_audio_ms = 0
        self.output_audio_ms = 0

    @property
    def audio_ms(self) -> int:
        return self.input_audio_ms + self.output_audio_ms

    def opened(self, session_id: str, dialect: Dialect, model: str) -> None:
        self._session_id = session_id
        opened = SessionOpened(
            session_id,
            self.principal.project,
            self.principal.key_id,
            self._server,
            self._instance,
            dialect.value,
            _clean(model)[:200],
            time.time(),
        )
        self._writer.submit(lambda c: transcripts.open_session(c, opened), f"open {opened.id}")

    def item(self, item: Item) -> Future[bool]:
        """Write the item (again, when it changed: a transcript came, audio was truncated)."""
        seq = self._order.setdefault(item.id, len(self._order))
        record = ItemRecord(
            _clean(item.id), seq, item.type, item.role, item.status, _clean(_plain_text(item)),
            item.render(Dialect.GA),
        )  # fmt: skip
        session_id = self._session_id
        return self._writer.submit(lambda c: transcripts.record_item(c, session_id, record), f"item {item.id}")

    def response_done(self, response: dict[str, Any]) -> Future[bool]:
        """The usage row of a finished response, from the very numbers its ``response.done`` reports."""
        tokens = Tokens.from_usage(response.get("usage"))
        self.output_audio_ms += tokens.audio_output * MS_PER_OUTPUT_AUDIO_TOKEN
        row = {
            "response_id": response["id"], "created_at": time.time(), "status": response["status"],
            "text_input_tokens": tokens.text_input, "cached_text_tokens": tokens.cached_text,
            "text_output_tokens": tokens.text_output, "audio_input_tokens": tokens.audio_input,
            "audio_output_tokens": tokens.audio_output, "cost_usd": tokens.cost(self._prices),
        }  # fmt: skip
        session_id, audio = self._session_id, (self.input_audio_ms, self.output_audio_ms)
        return self._writer.submit(
            lambda c: transcripts.record_usage(c, session_id, row, audio), f"usage {response['id']}"
        )

    def closed(self, reason: str) -> None:
        session_id, audio = self._session_id, (self.input_audio_ms, self.output_audio_ms)
        self._writer.submit(lambda c: transcripts.close_session(c, session_id, reason, audio), f"close {session_id}")

    def over_limit(self) -> str | None:
        """Why the session must end now (its key's audio minutes for the day are used up), or None."""
        key = self.principal.key
        if key is None or key.minutes_per_day is None:
            return None
        if self._limiter.minutes_used(key) < key.minutes_per_day:
            return None
        return self._limiter.minutes_message(key)

    def rate_limits(self) -> list[dict[str, Any]]:
        return self._limiter.rate_limits(self.principal.key) if self.principal.key is not None else []


def _plain_text(item: Item) -> str:
    if item.type == "function_call":
        return f"{item.name}({item.arguments or ''})"
    if item.type == "function_call_output":
        return item.output or ""
    return "\n".join(text for part in item.content if (text := part.plain_text()))


def _clean(text: str) -> str:
    """PostgreSQL's text cannot hold NUL, which JSON strings can: it is kept as U+FFFD."""
    return text.replace("\x00", "\ufffd")
