"""The usage ledger: what each response used and cost, and each session's audio, summed per project and key."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Engine, func, select

from .schema import projects, sessions, usage


class Prices(BaseModel):
    """US dollars per million tokens; the defaults are gpt-4o-mini-realtime-preview's list prices."""

    text_input: float = Field(0.60, ge=0)
    cached_text_input: float = Field(0.30, ge=0)
    text_output: float = Field(2.40, ge=0)
    audio_input: float = Field(10.0, ge=0)
    audio_output: float = Field(20.0, ge=0)


@dataclass(frozen=True)
class Tokens:
    """One response's usage, as its ``response.done`` reported it."""

    text_input: int
    cached_text: int
    text_output: int
    audio_input: int
    audio_output: int

    @classmethod
    def from_usage(cls, wire: dict[str, Any] | None) -> Tokens:
        wire = wire or {}
        given = wire.get("input_token_details") or {}
        made = wire.get("output_token_details") or {}
        return cls(
            text_input=int(given.get("text_tokens") or 0),
            cached_text=int(given.get("cached_tokens") or 0),
            text_output=int(made.get("text_tokens") or 0),
            audio_input=int(given.get("audio_tokens") or 0),
            audio_output=int(made.get("audio_tokens") or 0),
        )

    def cost(self, prices: Prices) -> float:
        """Cached text is billed at the cached price, the rest of the input at the full one."""
        uncached = max(self.text_input - self.cached_text, 0)
        dollars = (
            uncached * prices.text_input
            + self.cached_text * prices.cached_text_input
            + self.text_output * prices.text_output
            + self.audio_input * prices.audio_input
            + self.audio_output * prices.audio_output
        )
        return dollars / 1_000_000


@dataclass(frozen=True)
class UsageLine:
    project: str | None  # None: sessions opened with an environment key, or with no key
    key_id: str | None
    sessions: int
    responses: int
    text_input_tokens: int
    cached_text_tokens: int
    text_output_tokens: int
    audio_input_tokens: int
    audio_output_tokens: int
    audio_minutes: float
    cost_usd: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


USAGE_FIELDS = tuple(UsageLine.__dataclass_fields__)


def report(engine: Engine, project: str | None = None, since: float | None = None) -> list[UsageLine]:
    """Usage per project and key since ``since`` (Unix seconds; all time when None)."""
    tokens = select(
        usage.c.project_id, usage.c.key_id, func.count().label("responses"),
        func.sum(usage.c.text_input_tokens), func.sum(usage.c.cached_text_tokens),
        func.sum(usage.c.text_output_tokens), func.sum(usage.c.audio_input_tokens),
        func.sum(usage.c.audio_output_tokens), func.sum(usage.c.cost_usd),
    ).group_by(usage.c.project_id, usage.c.key_id)  # fmt: skip
    audio = select(
        sessions.c.project_id, sessions.c.key_id, func.count().label("sessions"),
        func.sum(sessions.c.input_audio_ms + sessions.c.output_audio_ms),
    ).group_by(sessions.c.project_id, sessions.c.key_id)  # fmt: skip
    if since is not None:
        tokens = tokens.where(usage.c.created_at >= since)
        audio = audio.where(sessions.c.started_at >= since)
    with engine.connect() as connection:
        names = {row.id: row.name for row in connection.execute(select(projects.c.id, projects.c.name))}
        lines: dict[tuple[Any, Any], list[Any]] = {}
        for project_id, key_id, count, audio_ms in connection.execute(audio):
            lines[(project_id, key_id)] = [count, 0, 0, 0, 0, 0, 0, (audio_ms or 0) / 60000, 0.0]
        for project_id, key_id, responses, *sums in connection.execute(tokens):
            line = lines.setdefault((project_id, key_id), [0, 0, 0, 0, 0, 0, 0, 0.0, 0.0])
            line[1] = responses
            line[2:7] = [int(value or 0) for value in sums[:5]]
            line[8] = float(sums[5] or 0)
    result = [
        UsageLine(names.get(project_id), key_id, *values)
        for (project_id, key_id), values in lines.items()
        if project is None or names.get(project_id) == project
    ]
    return sorted(result, key=lambda line: (line.project or "", line.key_id or ""))


def audio_ms_today(engine: Engine, key_id: str, day_start: float, other_than_instance: str) -> int:
    """Audio (in and out) of the key's sessions started since ``day_start`` that other server processes
    served (this process counts its own in memory)."""
    query = select(func.sum(sessions.c.input_audio_ms + sessions.c.output_audio_ms)).where(
        sessions.c.key_id == key_id,
        sessions.c.started_at >= day_start,
        sessions.c.instance != other_than_instance,
    )
    with engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)
