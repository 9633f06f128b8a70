"""The local language model in a process of its own: the child's side.

llama.cpp runs native code that can die (a segfault in a CPU kernel, an abort, the kernel's OOM killer); in the
server's process that would end every session at once. So the model lives in a worker process, and the server
talks to it over a pipe (``llm_process`` is the other end). Messages are tuples, ``(kind, request_id, ...)``:

server to worker: ``generate`` (a GenerationRequest), ``hold`` / ``release`` (llm.Hold), ``cancel``,
``warm_up`` (the instructions), ``close`` (no id).
worker to server: ``loaded`` (model id, CPU backend) or ``failed`` (reason) once at start; then per request
``delta`` (a text or ToolCallDelta, with the token counts so far), ``done`` (the final GenerationStats),
``error`` (message, code) or ``result`` (a warm-up finished).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .llm import EngineError, GenerationStats, TextStream

GENERATE, HOLD, RELEASE, CANCEL, WARM_UP, CLOSE = "generate", "hold", "release", "cancel", "warm_up", "close"
LOADED, FAILED, DELTA, DONE, ERROR, RESULT = "loaded", "failed", "delta", "done", "error", "result"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker loads: ``source`` as for ``Settings.llm_source``, with the engine's settings."""

    source: str
    cache_dir: Path | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    contexts: int = 1
    cpu_variant: str | None = None
    log_level: int = logging.INFO


def main(conn: Connection) -> None:
    """The worker process: take its WorkerConfig, load the model, say so, then serve requests until told to close
    or the socket breaks."""
    config: WorkerConfig = conn.recv()
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s[worker]: %(message)s")
    try:
        model = _load(config)
    except Exception as exc:  # the server reports it as the reason it is not ready
        log.exception("loading the language model failed")
        conn.send((FAILED, f"{type(exc).__name__}: {exc}"))
        return
    conn.send((LOADED, model.id, _backend_description()))
    try:
        asyncio.run(_Server(conn, model).serve())
    finally:
        conn.close()


def _load(config: WorkerConfig) -> Any:
    from .. import models
    from . import llama_cpu

    llama_cpu.prepare(config.cpu_variant)
    from .llama_local import LlamaCppModel
    from .llama_weights import local_weights

    path = local_weights(config.source, config.cache_dir)
    model_id = config.source if config.source in models.CATALOG else path.stem
    return LlamaCppModel(model_id, path, n_ctx=config.n_ctx, n_threads=config.n_threads, contexts=config.contexts)


def _backend_description() -> dict[str, object]:
    from . import llama_cpu

    return {"cpu": llama_cpu.cpu_summary(), "llama_cpp": llama_cpu.prepare().describe()}


class _Server:
    def __init__(self, conn: Connection, model: Any) -> None:
        self._conn = conn
        self._model = model
        self._streams: dict[int, TextStream] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple[Any, ...] | None] = asyncio.Queue()

        def read() -> None:
            try:
                while True:
                    loop.call_soon_threadsafe(inbox.put_nowait, self._conn.recv())
            except (EOFError, OSError):  # the server closed the pipe or died: stop too
                loop.call_soon_threadsafe(inbox.put_nowait, None)

        threading.Thread(target=read, name="llm-worker-inbox", daemon=True).start()
        try:
            while (message := await inbox.get()) is not None and message[0] != CLOSE:
                self._handle(message)
        finally:
            for task in list(self._tasks.values()):
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            await self._model.close()

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind, request_id, *args = message
        stream = self._streams.get(request_id)
        if kind == GENERATE:  # the stream exists at once, so a ``hold`` right behind finds it
            log.debug("request %s started", request_id)
            self._streams[request_id] = self._model.generate(args[0])
            self._start(request_id, self._generate(request_id, self._streams[request_id]))
        elif kind == WARM_UP:
            self._start(request_id, self._warm_up(request_id, args[0]))
        elif kind == HOLD and stream is not None:
            log.debug("request %s held", request_id)
            stream.hold.hold()
        elif kind == RELEASE and stream is not None:
            log.debug("request %s released", request_id)
            stream.hold.release()
        elif kind == CANCEL and request_id in self._tasks:
            log.debug("request %s cancelled", request_id)
            self._tasks[request_id].cancel()

    def _start(self, request_id: int, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks[request_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(request_id, None))

    async def _generate(self, request_id: int, stream: TextStream) -> None:
        try:
            async for delta in stream:
                self._send(DELTA, request_id, delta, _counts(stream.stats))
            self._send(DONE, request_id, stream.stats)
        except EngineError as exc:
            self._send(ERROR, request_id, str(exc), exc.code)
        except asyncio.CancelledError:
            pass  # the server stopped reading: nobody waits for an answer
        except Exception as exc:
            log.exception("generation failed")
            self._send(ERROR, request_id, f"local model failed: {exc}", EngineError.code)
        finally:
            del self._streams[request_id]
            await stream.aclose()
            log.debug("request %s ended: %s", request_id, stream.stats)

    async def _warm_up(self, request_id: int, instructions: str) -> None:
        try:
            await self._model.warm_up(instructions)
        except Exception as exc:
            self._send(ERROR, request_id, f"warm-up failed: {exc}", EngineError.code)
        else:
            self._send(RESULT, request_id)

    def _send(self, *message: object) -> None:
        with contextlib.suppress(OSError):  # the server is gone; the reader ends the worker
            self._conn.send(message)


def _counts(stats: GenerationStats) -> tuple[int, int, int]:
    return stats.prompt_tokens, stats.cached_tokens, stats.completion_tokens


if __name__ == "__main__":
    main(Connection(int(sys.argv[1])))
