"""The language model's worker process from the server's side: cancelling, holding and crashing, with SmolLM2."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest

from parley.engines.llm import GenerationRequest
from parley.engines.llm_process import EngineCrashed, WorkerLanguageModel
from parley.engines.llm_worker import WorkerConfig

INSTRUCTIONS = "You are a helpful assistant."
LONG = GenerationRequest(
    messages=[
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": "Count from one to two hundred in words."},
    ],
    max_tokens=400,
    temperature=0.0,
)
SHORT = GenerationRequest(messages=[{"role": "user", "content": "Say hello."}], max_tokens=8)


@pytest.fixture(scope="module")
async def model() -> AsyncIterator[WorkerLanguageModel]:
    engine = WorkerLanguageModel(WorkerConfig("smollm2-135m-instruct", contexts=1))
    await engine.warm_up(INSTRUCTIONS)
    yield engine
    await engine.close()


async def test_a_reader_cancelled_as_it_starts_stops_the_generation(model: WorkerLanguageModel) -> None:
    """An early answer dropped the moment it starts: the cancel is not lost, and the one context is free at once
    for the next request (a lost cancel let the dropped answer run to its end first)."""
    stream = model.generate(LONG)
    first = asyncio.ensure_future(anext(aiter(stream)))
    await asyncio.sleep(0)  # the reader is waiting for the worker to be ready, as it does on its first step
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await stream.aclose()
    started = time.monotonic()
    async for _ in model.generate(SHORT):
        break
    assert time.monotonic() - started < 1.0  # one token, not 400 of another answer first


async def test_a_held_generation_writes_nothing_until_released(model: WorkerLanguageModel) -> None:
    stream = model.generate(LONG)
    reader = aiter(stream)
    await anext(reader)
    stream.hold.hold()
    await asyncio.sleep(0.05)  # a token already on its way may still arrive
    written = stream.stats.completion_tokens
    await asyncio.sleep(0.5)
    assert stream.stats.completion_tokens <= written + 1
    stream.hold.release()
    for _ in range(5):
        await anext(reader)
    assert stream.stats.completion_tokens > written + 1
    await stream.aclose()
    assert stream.stats.finish_reason == "cancelled"


async def test_a_crash_fails_the_generation_and_the_next_is_served(model: WorkerLanguageModel) -> None:
    stream = model.generate(LONG)
    reader = aiter(stream)
    await anext(reader)
    pid = model.status()["worker_pid"]
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGSEGV)
    with pytest.raises(EngineCrashed, match="SIGSEGV"):
        async for _ in reader:
            pass
    text = "".join([delta async for delta in model.generate(SHORT) if isinstance(delta, str)])
    assert text.strip()
    status = model.status()
    assert status["state"] == "ready" and status["worker_pid"] != pid and status["restarts"] == 1
