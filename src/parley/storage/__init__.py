"""Parley's database: projects and keys, the usage ledger, transcripts. SQLite by default, PostgreSQL by URL.

Reads are plain calls (run them in a thread from async code); writes from sessions go through the
``Writer`` thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import database
from .database import StorageUnavailable
from .keys import KeyRecord, KeyStore
from .migrations import SchemaTooNew, migrate
from .writer import Writer

log = logging.getLogger(__name__)

__all__ = ["KeyRecord", "KeyStore", "Storage", "StorageUnavailable", "open_storage"]


@dataclass
class Storage:
    engine: Engine
    keys: KeyStore
    writer: Writer | None = field(default=None)

    def start_writer(self, capacity: int | None = None) -> Writer:
        self.writer = Writer(self.engine, capacity) if capacity else Writer(self.engine)
        return self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.engine.dispose()

    @property
    def description(self) -> str:
        return database.describe(self.engine)


def open_storage(url: str | None, data_dir: Path | None) -> Storage:
    """Connect and migrate; raises ``StorageUnavailable`` saying why when the database cannot be used."""
    engine = database.create(database.database_url(url, data_dir))
    database.check(engine)
    try:
        applied = migrate(engine)
    except SchemaTooNew as exc:
        raise StorageUnavailable(str(exc)) from None
    except SQLAlchemyError as exc:
        raise StorageUnavailable(f"cannot migrate the database {database.describe(engine)}: {exc}") from None
    if applied:
        log.info("storage: %s migrated to schema version %d", database.describe(engine), applied[-1])
    return Storage(engine, KeyStore(engine))
