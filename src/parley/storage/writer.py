"""The one thread that writes to the database, so no write ever runs on the event loop.

Writes are applied in the order submitted, each in its own transaction. When the database fails, the write
stays at the head of a bounded buffer and is retried (with backoff) before anything behind it, so a session's
rows keep their order; what overflows the buffer is dropped and counted, never silently.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from ..metrics import STORAGE_PENDING_WRITES, STORAGE_WRITE_FAILURES, STORAGE_WRITES_DROPPED

log = logging.getLogger(__name__)

Operation = Callable[[Connection], None]

DEFAULT_CAPACITY = 10_000
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 10.0
_STOP = object()


@dataclass
class _Write:
    operation: Operation
    what: str
    done: Future[bool] = field(default_factory=Future)

    def settle(self, written: bool) -> None:
        if not self.done.done():
            self.done.set_result(written)


class Writer:
    def __init__(self, engine: Engine, capacity: int = DEFAULT_CAPACITY) -> None:
        self._engine = engine
        self._capacity = capacity
        self._incoming: queue.SimpleQueue[_Write | object] = queue.SimpleQueue()
        self._backlog: deque[_Write] = deque()
        self._delay = RETRY_FIRST_S
        self._failing_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="parley-storage-writer", daemon=True)
        self._thread.start()

    def submit(self, operation: Operation, what: str) -> Future[bool]:
        """Queue a write. Its future says True once committed, False when the database failed it (the write
        is then retried in the background, or was dropped and counted)."""
        write = _Write(operation, what)
        STORAGE_PENDING_WRITES.inc()
        self._incoming.put(write)
        return write.done

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (one more try for the backlog), then stop; what is left is counted as dropped."""
        self._incoming.put(_STOP)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        stopping = False
        while True:
            stopping = self._take(block=not self._backlog and not stopping) or stopping
            flushed = self._flush()
            if stopping:  # everything queued before the stop had its (last) try
                break
            if flushed:
                continue
            # The database is failing: wait (taking new writes in) before the next try.
            stopping = self._wait(self._delay)
            self._delay = min(self._delay * 2, RETRY_MAX_S)
        for write in self._backlog:
            STORAGE_WRITES_DROPPED.labels("shutdown").inc()
            STORAGE_PENDING_WRITES.dec()
            write.settle(False)
        if self._backlog:
            log.error("storage: %d writes could not be written before shutdown", len(self._backlog))

    def _take(self, block: bool) -> bool:
        """Move queued writes into the backlog (waiting for one when ``block``); True when told to stop."""
        try:
            item = self._incoming.get(block=block)
        except queue.Empty:
            return False
        while True:
            if item is _STOP:
                return True
            assert isinstance(item, _Write)
            self._enqueue(item)
            try:
                item = self._incoming.get_nowait()
            except queue.Empty:
                return False

    def _wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self._incoming.get(timeout=left)
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            assert isinstance(item, _Write)
            self._enqueue(item)
        return False

    def _enqueue(self, write: _Write) -> None:
        if len(self._backlog) >= self._capacity:
            dropped = self._backlog.popleft()
            STORAGE_WRITES_DROPPED.labels("overflow").inc()
            STORAGE_PENDING_WRITES.dec()
            dropped.settle(False)
            log.error("storage: retry buffer full (%d), dropped the oldest write (%s)", self._capacity, dropped.what)
        self._backlog.append(write)
        if self._failing_since is not None:  # nobody waits for a write stuck behind a failing database
            write.settle(False)

    def _flush(self) -> bool:
        """Write the backlog in order; stop at the first transient failure. True when it is empty."""
        while self._backlog:
            write = self._backlog[0]
            try:
                with self._engine.begin() as connection:
                    write.operation(connection)
            except (OperationalError, OSError) as exc:  # the database is down, locked or full: retry later
                self._transient(write, exc)
                return False
            except (DBAPIError, SQLAlchemyError, ValueError, TypeError):  # this write can never succeed
                log.exception("storage: the database refused a write (%s); it is dropped", write.what)
                STORAGE_WRITE_FAILURES.labels("permanent").inc()
                STORAGE_WRITES_DROPPED.labels("refused").inc()
                self._done(write, False)
                continue
            self._done(write, True)
            if self._failing_since is not None:
                log.warning("storage: writing again after %.1f s of failures", time.monotonic() - self._failing_since)
                self._failing_since = None
            self._delay = RETRY_FIRST_S
        return True

    def _transient(self, write: _Write, exc: BaseException) -> None:
        STORAGE_WRITE_FAILURES.labels("transient").inc()
        for waiting in self._backlog:  # whoever waits goes on; the writes stay, in order, and are retried
            waiting.settle(False)
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.error("storage: write failed (%s), retrying: %s", write.what, str(exc).splitlines()[0])

    def _done(self, write: _Write, written: bool) -> None:
        self._backlog.popleft()
        STORAGE_PENDING_WRITES.dec()
        write.settle(written)
