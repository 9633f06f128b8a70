"""The local language model in a supervised worker process: the server's side (the worker is ``llm_worker``).

When the worker dies in native code (a segfault, an abort, an OOM kill), only the generations it was running
fail: their streams raise ``EngineCrashed``, so those responses end ``failed`` with the reason, and the server
starts a new worker at once (then after growing delays should it keep dying). Requests that arrive meanwhile
wait for it. Sessions and their conversations live in the server and are untouched; the worker's KV cache of
past turns is lost and refilled as turns come.

The worker is a new Python process (``python -m parley.engines.llm_worker``), not a fork: the server runs
threads and an event loop that a fork would copy half-way. Everything crosses one socket pair as pickled
tuples (``multiprocessing.connection``); a token costs microseconds against its tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from ..metrics import LLM_WORKER_EXITS
from . import llm_worker as wire
from .llm import EngineError, GenerationRequest, GenerationStats, Hold, TextStream
from .llm_worker import WorkerConfig

log = logging.getLogger(__name__)

# Loading and warming a bundled model takes seconds; a worker that has not said it is loaded by then is stuck.
LOAD_TIMEOUT_S = 180.0
# Delays before starting a worker again after it died before it was ready: doubling up to the cap.
RESTART_FIRST_DELAY_S = 1.0
RESTART_MAX_DELAY_S = 30.0
CLOSE_TIMEOUT_S = 10.0


class EngineCrashed(EngineError):
    """The worker process died while running this request."""

    code = "model_crashed"


@dataclass(frozen=True)
class _Crash:
    reason: str


class _Worker:
    """One worker process, its pipe and the requests waiting on it."""

    def __init__(self, config: WorkerConfig, on_exit: Callable[[_Worker, str], None]) -> None:
        self._loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", wire.__name__, str(theirs.fileno())], pass_fds=(theirs.fileno(),)
        )
        theirs.close()  # the child's end lives in the child: its death then ends our reads
        self._conn = Connection(ours.detach())
        self._sending = threading.Lock()  # the event loop sends, and so does stop() from its thread
        self.loaded: asyncio.Future[tuple[Any, ...]] = self._loop.create_future()
        self._inboxes: dict[int, asyncio.Queue[tuple[Any, ...] | _Crash]] = {}
        self._on_exit = on_exit
        self.exit_reason: str | None = None
        self._conn.send(config)  # the first message: what to load
        threading.Thread(target=self._read, name="llm-worker-reader", daemon=True).start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def open(self, request_id: int) -> asyncio.Queue[tuple[Any, ...] | _Crash]:
        inbox: asyncio.Queue[tuple[Any, ...] | _Crash] = asyncio.Queue()
        if self.exit_reason is not None:
            inbox.put_nowait(_Crash(self.exit_reason))
        self._inboxes[request_id] = inbox
        return inbox

    def forget(self, request_id: int) -> None:
        self._inboxes.pop(request_id, None)

    def send(self, *message: object) -> None:
        """Send to the worker; a dead worker's requests learn of it from their inbox, not from here."""
        with self._sending, contextlib.suppress(OSError, ValueError):
            self._conn.send(message)

    def stop(self) -> None:
        """Ask the worker to finish, then end it if it does not."""
        self.send(wire.CLOSE)
        try:
            self.process.wait(CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(CLOSE_TIMEOUT_S)
        self._conn.close()

    def _read(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                self._call(self._deliver, self._conn.recv())
        try:
            code: int | None = self.process.wait(CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        self._call(self._exited, _describe_exit(code))

    def _call(self, callback: Callable[..., None], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
            self._loop.call_soon_threadsafe(callback, *args)

    def _deliver(self, message: tuple[Any, ...]) -> None:
        if message[0] in (wire.LOADED, wire.FAILED):
            if not self.loaded.done():
                self.loaded.set_result(message)
            return
        inbox = self._inboxes.get(message[1])
        if inbox is not None:
            inbox.put_nowait(message)

    def _exited(self, reason: str) -> None:
        self.exit_reason = reason
        if not self.loaded.done():
            self.loaded.set_result((wire.FAILED, f"the worker process {reason} while loading"))
        for inbox in self._inboxes.values():
            inbox.put_nowait(_Crash(reason))
        self._on_exit(self, reason)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with status {code}"


class _WorkerHold(Hold):
    """A Hold whose state the worker's engine thread obeys, sent over the pipe once the request is there."""

    def __init__(self) -> None:
        super().__init__()
        self._send: Callable[[str], None] | None = None

    def attach(self, send: Callable[[str], None]) -> None:
        self._send = send
        if self.held:
            send(wire.HOLD)

    def detach(self) -> None:
        self._send = None

    def hold(self) -> None:
        super().hold()
        if self._send is not None:
            self._send(wire.HOLD)

    def release(self) -> None:
        super().release()
        if self._send is not None:
            self._send(wire.RELEASE)


class WorkerLanguageModel:
    """A ``LanguageModel`` whose local engine runs in a worker process that is restarted when it dies."""

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._id = config.source
        self._instructions: str | None = None
        self._worker: _Worker | None = None
        self._ready = asyncio.Event()
        self._restarting: asyncio.Task[None] | None = None
        self._closed = False
        self._ids = itertools.count(1)
        self.backend: dict[str, object] = {}
        self.restarts = 0
        self.last_exit: str | None = None
        self.problem: str | None = None  # why the worker is not serving, while it is not

    @property
    def id(self) -> str:
        return self._id

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def status(self) -> dict[str, object]:
        """What ``/readyz`` shows of the model stage."""
        if self.ready:
            state = "ready"
        elif self._restarting is not None:
            state = "restarting"
        else:
            state = "failed" if self.problem else "starting"
        return {
            "engine": "llama.cpp",
            "state": state,
            "worker_pid": self._worker.pid if self._worker else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "problem": self.problem,
            **self.backend,
        }

    async def warm_up(self, instructions: str) -> None:
        """Start the worker, load and warm the model; an EngineError says why it could not."""
        self._instructions = instructions
        try:
            await self._start()
        except EngineError as exc:
            self.problem = str(exc)
            raise

    def generate(self, request: GenerationRequest) -> TextStream:
        stats, hold = GenerationStats(), _WorkerHold()
        return TextStream(self._stream(request, stats, hold), stats, hold)

    async def close(self) -> None:
        self._closed = True
        if self._restarting is not None:
            self._restarting.cancel()
            with contextlib.suppress(BaseException):
                await self._restarting
        if self._worker is not None:
            await asyncio.to_thread(self._worker.stop)

    async def _stream(
        self, request: GenerationRequest, stats: GenerationStats, hold: _WorkerHold
    ) -> AsyncIterator[Any]:
        worker = await self._serving_worker()
        request_id = next(self._ids)
        inbox = worker.open(request_id)
        worker.send(wire.GENERATE, request_id, request)
        hold.attach(lambda kind: worker.send(kind, request_id))
        finished = False
        try:
            while True:
                message = await inbox.get()
                if isinstance(message, _Crash):
                    finished = True
                    raise EngineCrashed(f"the language model's worker process {message.reason}; it is restarting")
                kind = message[0]
                if kind == wire.DELTA:
                    stats.prompt_tokens, stats.cached_tokens, stats.completion_tokens = message[3]
                    yield message[2]
                elif kind == wire.DONE:
                    finished = True
                    _copy_stats(message[2], stats)
                    return
                elif kind == wire.ERROR:
                    finished = True
                    raise _engine_error(message[2], message[3])
        finally:
            hold.detach()
            worker.forget(request_id)
            if not finished:  # closed early (barge-in, cancel, disconnect): the worker stops at its next token
                stats.finish_reason = "cancelled"
                worker.send(wire.CANCEL, request_id)

    async def _serving_worker(self) -> _Worker:
        if self._closed:
            raise EngineError("the language model is shut down")
        try:
            # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that arrives as the wait ends,
            # and a dropped early answer would then run to its end while the response waits for it.
            async with asyncio.timeout(LOAD_TIMEOUT_S):
                await self._ready.wait()
        except TimeoutError:
            raise EngineError(f"the language model is not available: {self.problem or 'still starting'}") from None
        assert self._worker is not None
        return self._worker

    async def _start(self) -> None:
        """One worker from spawn to warm; raises EngineError with the reason it did not get there."""
        self._worker = worker = _Worker(self._config, self._exited)
        try:
            async with asyncio.timeout(LOAD_TIMEOUT_S):
                loaded = await asyncio.shield(worker.loaded)
        except TimeoutError:
            await asyncio.to_thread(worker.stop)
            raise EngineError(f"the language model's worker did not load within {LOAD_TIMEOUT_S:g}s") from None
        if loaded[0] == wire.FAILED:
            await asyncio.to_thread(worker.stop)
            raise EngineError(f"loading the language model failed: {loaded[1]}")
        self._id, self.backend = loaded[1], loaded[2]
        try:
            await self._warm(worker)
        except EngineError:
            await asyncio.to_thread(worker.stop)
            raise
        self.problem = None
        self._ready.set()
        log.info("language model %s ready in worker %s (%s)", self._id, worker.pid, self.backend.get("llama_cpp"))

    async def _warm(self, worker: _Worker) -> None:
        request_id = next(self._ids)
        inbox = worker.open(request_id)
        worker.send(wire.WARM_UP, request_id, self._instructions or "")
        try:
            message = await inbox.get()
        finally:
            worker.forget(request_id)
        if isinstance(message, _Crash):
            raise EngineError(f"the language model's worker process {message.reason} during its warm-up")
        if message[0] == wire.ERROR:
            raise EngineError(message[2])

    def _exited(self, worker: _Worker, reason: str) -> None:
        if worker is not self._worker or self._closed:
            return
        was_ready = self.ready
        self._ready.clear()
        self.last_exit = reason
        LLM_WORKER_EXITS.labels(reason=reason).inc()
        if not was_ready:  # died while starting: ``_start`` reports it
            return
        log.error("the language model's worker process %s; starting another", reason)
        self.problem = f"worker process {reason}; restarting"
        self._restarting = asyncio.get_running_loop().create_task(self._restart())

    async def _restart(self) -> None:
        delay = RESTART_FIRST_DELAY_S
        try:
            while not self._closed:
                self.restarts += 1
                try:
                    await self._start()
                    return
                except EngineError as exc:
                    self.problem = f"{exc} (retrying in {delay:g}s)"
                    log.error("restarting the language model failed: %s", self.problem)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_MAX_DELAY_S)
        finally:
            self._restarting = None


def _copy_stats(source: GenerationStats, target: GenerationStats) -> None:
    target.prompt_tokens = source.prompt_tokens
    target.cached_tokens = source.cached_tokens
    target.completion_tokens = source.completion_tokens
    target.finish_reason = source.finish_reason


def _engine_error(message: str, code: str) -> EngineError:
    error = EngineError(message)
    error.code = code
    return error
