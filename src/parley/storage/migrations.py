"""Schema migrations: a versioned list in code, applied in order at start, in one transaction.

Why not Alembic: Parley's schema is a handful of tables that both SQLite and PostgreSQL must carry the same
way, migrated by the server itself at start with no operator step; a numbered list of functions on a
SQLAlchemy connection does that with no second tool, no migration folder to ship and no ``alembic.ini``.
Each version is applied once, recorded in ``parley_schema_version``; a database newer than this code is
refused rather than guessed at. Later versions add functions (ALTER TABLE ...) and never edit earlier ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, select, text

from .schema import V1_TABLES, metadata, schema_version


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=list(V1_TABLES))


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "projects, api keys, sessions, items, usage", _create_v1),
]
LATEST = MIGRATIONS[-1][0]


class SchemaTooNew(RuntimeError):
    pass


def migrate(engine: Engine) -> list[int]:
    """Bring the schema up to date; return the versions applied now (none when it already was)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # two servers starting at once: one migrates, one waits
            connection.execute(text("SELECT pg_advisory_xact_lock(7263539)"))
        metadata.create_all(connection, tables=[schema_version])
        applied = set(connection.execute(select(schema_version.c.version)).scalars())
        if applied and max(applied) > LATEST:
            raise SchemaTooNew(f"the database has schema version {max(applied)}; this Parley knows up to {LATEST}")
        done = []
        for version, description, apply in MIGRATIONS:
            if version in applied:
                continue
            apply(connection)
            connection.execute(
                schema_version.insert().values(version=version, description=description, applied_at=time.time())
            )
            done.append(version)
        return done
