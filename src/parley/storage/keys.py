"""Projects and their API keys. A key's secret is shown once, at creation; only its sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, func, or_, select

from .schema import api_keys, projects

SECRET_PREFIX = "sk-parley-"
_SHOWN_CHARS = len(SECRET_PREFIX) + 6


@dataclass(frozen=True)
class KeyRecord:
    id: str
    project_id: int
    project: str
    prefix: str
    rpm: int | None
    max_sessions: int | None
    minutes_per_day: float | None
    expires_at: float | None
    created_at: float
    revoked_at: float | None

    def problem(self, now: float) -> str | None:
        """Why this key cannot be used now, or None when it can."""
        if self.revoked_at is not None:
            return "This API key has been revoked."
        if self.expires_at is not None and self.expires_at <= now:
            return "This API key has expired."
        return None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).hexdigest()


def project_id(connection: Connection, name: str, *, create: bool) -> int | None:
    """The project's id; created on first use when ``create``."""
    found = connection.execute(select(projects.c.id).where(projects.c.name == name)).scalar()
    if found is None and create:
        inserted = connection.execute(projects.insert().values(name=name, created_at=time.time()))
        return int(inserted.inserted_primary_key[0])
    return found


class KeyStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        project: str,
        *,
        rpm: int | None = None,
        max_sessions: int | None = None,
        minutes_per_day: float | None = None,
        expires_at: float | None = None,
    ) -> tuple[str, KeyRecord]:
        """A new key for ``project`` (created if new): its secret, and the record that is stored."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        with self._engine.begin() as connection:
            owner = project_id(connection, project, create=True)
            connection.execute(
                api_keys.insert().values(
                    id=key_id, project_id=owner, hash=hash_secret(secret), prefix=secret[:_SHOWN_CHARS],
                    rpm=rpm, max_sessions=max_sessions, minutes_per_day=minutes_per_day,
                    expires_at=expires_at, created_at=time.time(),
                )
            )  # fmt: skip
        record = self._one(api_keys.c.id == key_id)
        assert record is not None
        return secret, record

    def find(self, secret: str) -> KeyRecord | None:
        """The stored key with this secret, revoked and expired ones included (the caller says why not)."""
        return self._one(api_keys.c.hash == hash_secret(secret))

    def list(self, project: str | None = None) -> list[KeyRecord]:
        query = self._select().order_by(api_keys.c.created_at)
        if project is not None:
            query = query.where(projects.c.name == project)
        with self._engine.connect() as connection:
            return [KeyRecord(**row._mapping) for row in connection.execute(query)]

    def revoke(self, id_or_prefix: str) -> KeyRecord | None:
        """Revoke the key with this id (or the one key whose shown prefix this is); None when there is none."""
        matches = [k for k in self.list() if id_or_prefix in (k.id, k.prefix)]
        if len(matches) != 1:
            return None
        with self._engine.begin() as connection:
            connection.execute(
                api_keys.update()
                .where(api_keys.c.id == matches[0].id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        return self._one(api_keys.c.id == matches[0].id)

    def any_usable(self) -> bool:
        """Whether some stored key can still be used: then the server requires keys."""
        now = time.time()
        query = (
            select(func.count())
            .select_from(api_keys)
            .where(api_keys.c.revoked_at.is_(None), or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now))
        )
        with self._engine.connect() as connection:
            return bool(connection.execute(query).scalar())

    def _select(self) -> Select[Any]:
        return select(
            api_keys.c.id, api_keys.c.project_id, projects.c.name.label("project"), api_keys.c.prefix,
            api_keys.c.rpm, api_keys.c.max_sessions, api_keys.c.minutes_per_day, api_keys.c.expires_at,
            api_keys.c.created_at, api_keys.c.revoked_at,
        ).join(projects, projects.c.id == api_keys.c.project_id)  # fmt: skip

    def _one(self, condition: ColumnElement[bool]) -> KeyRecord | None:
        with self._engine.connect() as connection:
            row = connection.execute(self._select().where(condition)).first()
        return KeyRecord(**row._mapping) if row is not None else None
