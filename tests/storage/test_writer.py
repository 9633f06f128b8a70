"""The writer thread when the database fails: writes are kept in order and retried, overflow is counted."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import REGISTRY
from sqlalchemy import Connection, create_engine, select

from parley.storage import KeyStore, Storage, open_storage
from parley.storage.migrations import migrate
from parley.storage.schema import projects
from parley.storage.writer import Writer
from tests.support.postgres import PostgresCluster


def insert(name: str):  # type: ignore[no-untyped-def]
    def operation(connection: Connection) -> None:
        connection.execute(projects.insert().values(name=name, created_at=time.time()))

    return operation


def names(storage: Storage) -> list[str]:
    with storage.engine.connect() as connection:
        return list(connection.execute(select(projects.c.name).order_by(projects.c.id)).scalars())


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def wait_for(condition, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_writes_survive_a_postgresql_outage_in_order(postgres: PostgresCluster) -> None:
    storage = open_storage(postgres.new_database(), None)
    writer = storage.start_writer()
    failures = counter("parley_storage_write_failures_total", kind="transient")
    assert writer.submit(insert("before"), "test").result(timeout=10)
    postgres.pause()
    try:
        down = [writer.submit(insert(f"during-{n}"), "test") for n in range(3)]
        # Nobody waits on a failing database: each write is answered "not yet written" at once.
        assert [future.result(timeout=10) for future in down] == [False, False, False]
        assert counter("parley_storage_write_failures_total", kind="transient") > failures
    finally:
        postgres.resume()
    writer.submit(insert("after"), "test")
    wait_for(lambda: len(names(storage)) == 5)
    assert names(storage) == ["before", "during-0", "during-1", "during-2", "after"]
    storage.close()


def test_overflow_of_the_retry_buffer_is_counted_and_the_rest_written(tmp_path: Path) -> None:
    # A SQLite file in a folder that does not exist yet: every write fails until it does.
    folder = tmp_path / "later"
    engine = create_engine(f"sqlite:///{folder / 'parley.db'}")
    writer = Writer(engine, capacity=3)
    dropped = counter("parley_storage_writes_dropped_total", reason="overflow")
    futures = [writer.submit(insert(f"p{n}"), "test") for n in range(5)]
    assert [future.result(timeout=10) for future in futures] == [False] * 5
    assert counter("parley_storage_writes_dropped_total", reason="overflow") == dropped + 2
    folder.mkdir()
    migrate(engine)
    storage = Storage(engine, KeyStore(engine), writer)
    wait_for(lambda: len(names(storage)) == 3)
    assert names(storage) == ["p2", "p3", "p4"]
    storage.close()


def test_a_write_the_database_refuses_is_dropped_and_counted_not_retried(storage: Storage) -> None:
    writer = storage.start_writer()
    refused = counter("parley_storage_writes_dropped_total", reason="refused")
    assert writer.submit(insert("twice"), "test").result(timeout=10)
    assert not writer.submit(insert("twice"), "test").result(timeout=10)  # a unique name, written again
    assert writer.submit(insert("next"), "test").result(timeout=10)
    assert counter("parley_storage_writes_dropped_total", reason="refused") == refused + 1
    assert names(storage) == ["twice", "next"]
