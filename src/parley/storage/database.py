"""Which database, and an engine for it: a SQLite file under the data folder unless a URL names another."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

SQLITE_FILE = "parley.db"


class StorageUnavailable(RuntimeError):
    """The database cannot be reached or used; the message says why, for the operator."""


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/parley``, else ``~/.local/share/parley``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "parley"


def database_url(url: str | None, data_dir: Path | None) -> str:
    """The SQLAlchemy URL: ``postgresql://`` URLs run on psycopg 3; no URL means the SQLite file."""
    if not url:
        folder = data_dir or default_data_dir()
        return f"sqlite:///{folder / SQLITE_FILE}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def create(url: str) -> Engine:
    """An engine for ``url``. SQLite: WAL (readers never block the writer), FULL sync (a commit is on disk
    before it is acknowledged), a busy timeout for the CLI writing beside a running server."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageUnavailable(f"PARLEY_DATABASE_URL is not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageUnavailable(f"cannot create the data folder: {exc}") from None
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 5})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise StorageUnavailable(f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL")
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=5000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def check(engine: Engine) -> None:
    """Refuse a database that cannot be reached, with the driver's reason."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StorageUnavailable(f"cannot open the database {describe(engine)}: {_reason(exc)}") from None


def describe(engine: Engine) -> str:
    """The URL without its password, for messages and logs."""
    return engine.url.render_as_string(hide_password=True)


def _reason(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    return str(original or exc).strip().splitlines()[0] if str(original or exc).strip() else type(exc).__name__
