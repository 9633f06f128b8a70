"""Limits of stored keys: concurrent sessions and sessions started per minute (counted by this server
process), and audio minutes per UTC day (counted across every server sharing the database)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from ..storage import KeyRecord, Storage
from ..storage.usage import audio_ms_today

WINDOW_S = 60.0


class Metered(Protocol):
    """A live session's audio so far, in and out, in milliseconds."""

    @property
    def audio_ms(self) -> int: ...


@dataclass(frozen=True)
class Refusal:
    """Why a key may not open a session now: sent as HTTP 429 ``rate_limit_exceeded``."""

    message: str
    kind: str  # OpenAI's error "type" for rate limits: "requests" or "minutes"


def day_start(now: float) -> float:
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    return dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC).timestamp()


class Limiter:
    def __init__(self, storage: Storage, instance: str) -> None:
        self._storage = storage
        self._instance = instance
        self._live: dict[str, set[Metered]] = {}
        self._starts: dict[str, deque[float]] = {}
        self._others_ms: dict[str, int] = {}  # other processes' audio today, as last read
        self._finished: dict[str, tuple[float, int]] = {}  # (day, audio ms) of this process's ended sessions

    async def admit(self, key: KeyRecord, session: Metered) -> Refusal | None:
        """Count ``session`` against ``key``, or say which limit it would pass."""
        now = time.time()
        if key.minutes_per_day is not None:  # read first: nothing may change between the checks and the count
            self._others_ms[key.id] = await asyncio.to_thread(
                audio_ms_today, self._storage.engine, key.id, day_start(now), self._instance
            )
        live = self._live.setdefault(key.id, set())
        if key.max_sessions is not None and len(live) >= key.max_sessions:
            return Refusal(
                f"Rate limit reached for concurrent sessions: limit {key.max_sessions}, open {len(live)}. "
                "Close a session before opening another.",
                "requests",
            )
        starts = self._recent_starts(key.id, now)
        if key.rpm is not None and len(starts) >= key.rpm:
            wait = math.ceil(starts[0] + WINDOW_S - now)
            return Refusal(
                f"Rate limit reached for sessions per min (RPM): limit {key.rpm}, used {len(starts)}. "
                f"Please try again in {wait}s.",
                "requests",
            )
        if key.minutes_per_day is not None and self.minutes_used(key) >= key.minutes_per_day:
            return Refusal(self.minutes_message(key), "minutes")
        starts.append(now)
        live.add(session)
        return None

    def release(self, key: KeyRecord, session: Metered) -> None:
        self._live.get(key.id, set()).discard(session)
        today = day_start(time.time())
        day, ms = self._finished.get(key.id, (today, 0))
        self._finished[key.id] = (today, (ms if day == today else 0) + session.audio_ms)

    def minutes_used(self, key: KeyRecord) -> float:
        """Audio minutes of the key today: other processes' (as read at the last connect), and this one's."""
        day, finished = self._finished.get(key.id, (0.0, 0))
        own = (finished if day == day_start(time.time()) else 0) + sum(s.audio_ms for s in self._live.get(key.id, ()))
        return (self._others_ms.get(key.id, 0) + own) / 60000

    def minutes_message(self, key: KeyRecord) -> str:
        return (
            f"Rate limit reached for audio minutes per day: limit {key.minutes_per_day:g}, "
            f"used {self.minutes_used(key):.2f}. The limit resets at 00:00 UTC."
        )

    def rate_limits(self, key: KeyRecord) -> list[dict[str, Any]]:
        """What ``rate_limits.updated`` says: the key's sessions-per-minute window, when it has one."""
        if key.rpm is None:
            return []
        now = time.time()
        starts = self._recent_starts(key.id, now)
        reset = round(max(starts[0] + WINDOW_S - now, 0.0), 3) if starts else 0.0
        remaining = max(key.rpm - len(starts), 0)
        return [{"name": "requests", "limit": key.rpm, "remaining": remaining, "reset_seconds": reset}]

    def _recent_starts(self, key_id: str, now: float) -> deque[float]:
        starts = self._starts.setdefault(key_id, deque())
        while starts and starts[0] <= now - WINDOW_S:
            starts.popleft()
        return starts
