"""Sessions and their items: the writes a live session makes, and what operators read back."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, select, update

from .keys import project_id
from .schema import items, projects, sessions, usage


@dataclass(frozen=True)
class SessionOpened:
    id: str
    project: str | None
    key_id: str | None
    server: str
    instance: str
    dialect: str
    model: str
    started_at: float


@dataclass(frozen=True)
class ItemRecord:
    item_id: str
    seq: int
    type: str
    role: str | None
    status: str
    text: str
    data: dict[str, Any]


@dataclass
class SessionSummary:
    id: str
    project: str | None
    key_id: str | None
    dialect: str
    model: str
    started_at: float
    ended_at: float | None
    end_reason: str | None
    input_audio_ms: int
    output_audio_ms: int
    items: int = 0
    transcript: list[ItemRecord] = field(default_factory=list)

    def as_dict(self, with_items: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_items:
            data.pop("transcript")
        return data


# Writes (run by the storage writer, each in its own transaction) --------------------------------------------


def open_session(connection: Connection, opened: SessionOpened) -> None:
    owner = project_id(connection, opened.project, create=True) if opened.project else None
    values = asdict(opened) | {"project_id": owner, "last_active_at": opened.started_at}
    values.pop("project")
    connection.execute(sessions.insert().values(**values))


def record_item(connection: Connection, session_id: str, record: ItemRecord) -> None:
    """Insert the item, or bring it up to date (a transcript that arrived, audio truncated to what was heard)."""
    now = time.time()
    values = {
        "type": record.type, "role": record.role, "status": record.status, "text": record.text,
        "data": json.dumps(record.data, ensure_ascii=False), "updated_at": now,
    }  # fmt: skip
    where = and_(items.c.session_id == session_id, items.c.item_id == record.item_id)
    if connection.execute(update(items).where(where).values(**values)).rowcount == 0:
        connection.execute(
            items.insert().values(
                session_id=session_id, item_id=record.item_id, seq=record.seq, created_at=now, **values
            )
        )
    connection.execute(update(sessions).where(sessions.c.id == session_id).values(last_active_at=now))


def record_usage(connection: Connection, session_id: str, row: dict[str, Any], audio_ms: tuple[int, int]) -> None:
    """One response's usage row, and the session's audio so far (both in one transaction)."""
    owner = connection.execute(select(sessions.c.project_id, sessions.c.key_id).where(sessions.c.id == session_id))
    project, key = owner.first() or (None, None)
    connection.execute(usage.insert().values(session_id=session_id, project_id=project, key_id=key, **row))
    progress(connection, session_id, audio_ms)


def progress(connection: Connection, session_id: str, audio_ms: tuple[int, int]) -> None:
    connection.execute(
        update(sessions)
        .where(sessions.c.id == session_id)
        .values(input_audio_ms=audio_ms[0], output_audio_ms=audio_ms[1], last_active_at=time.time())
    )


def close_session(connection: Connection, session_id: str, reason: str, audio_ms: tuple[int, int]) -> None:
    progress(connection, session_id, audio_ms)
    connection.execute(
        update(sessions).where(sessions.c.id == session_id).values(ended_at=time.time(), end_reason=reason)
    )


def recover(engine: Engine, server: str, older_than: float) -> int:
    """Close sessions a dead process left open: those of an earlier run on this host and port, and any
    whose last activity is older than the longest session can last. Returns how many."""
    stale = and_(
        sessions.c.ended_at.is_(None),
        (sessions.c.server == server) | (sessions.c.last_active_at < older_than),
    )
    with engine.begin() as connection:
        closed = connection.execute(
            update(sessions).where(stale).values(ended_at=sessions.c.last_active_at, end_reason="server_stopped")
        )
        return int(closed.rowcount)


# Reads ---------------------------------------------------------------------------------------------------


def _summary_query() -> Any:
    counted = select(items.c.session_id, func.count().label("n")).group_by(items.c.session_id).subquery()
    return (
        select(
            sessions.c.id, projects.c.name.label("project"), sessions.c.key_id, sessions.c.dialect,
            sessions.c.model, sessions.c.started_at, sessions.c.ended_at, sessions.c.end_reason,
            sessions.c.input_audio_ms, sessions.c.output_audio_ms, func.coalesce(counted.c.n, 0).label("items"),
        )
        .outerjoin(projects, projects.c.id == sessions.c.project_id)
        .outerjoin(counted, counted.c.session_id == sessions.c.id)
    )  # fmt: skip


def list_sessions(
    engine: Engine, project: str | None = None, since: float | None = None, limit: int = 100
) -> list[SessionSummary]:
    query = _summary_query().order_by(sessions.c.started_at.desc()).limit(limit)
    if project is not None:
        query = query.where(projects.c.name == project)
    if since is not None:
        query = query.where(sessions.c.started_at >= since)
    with engine.connect() as connection:
        return [SessionSummary(**row._mapping) for row in connection.execute(query)]


def get_session(engine: Engine, session_id: str) -> SessionSummary | None:
    """The session with its items in order, or None."""
    with engine.connect() as connection:
        row = connection.execute(_summary_query().where(sessions.c.id == session_id)).first()
        if row is None:
            return None
        summary = SessionSummary(**row._mapping)
        query = select(items).where(items.c.session_id == session_id).order_by(items.c.seq)
        summary.transcript = [
            ItemRecord(r.item_id, r.seq, r.type, r.role, r.status, r.text, json.loads(r.data))
            for r in connection.execute(query)
        ]
    return summary


def delete_session(engine: Engine, session_id: str) -> bool:
    """Delete the session and its transcript (its usage rows stay: they are the bill). False if unknown."""
    with engine.begin() as connection:
        connection.execute(delete(items).where(items.c.session_id == session_id))
        return bool(connection.execute(delete(sessions).where(sessions.c.id == session_id)).rowcount)
