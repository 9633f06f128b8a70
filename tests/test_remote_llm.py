"""Parley's OpenAI-compatible LLM engine against a real endpoint on loopback: llama-cpp-python's server.

llama-cpp-python's server ignores ``stream_options.include_usage``: its streams carry no usage. Parley
then reports the prompt count as unknown (0) and counts one output token per streamed text chunk,
which is what that server sends. The ``endpoint_streams_usage`` probe keeps the usage checks honest
should a later version start sending usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from parley import models
from parley.engines import llama_cpu
from parley.engines.llm import EngineError, GenerationRequest
from parley.engines.openai_chat import OpenAIChatModel
from tests.support.client import connect, response_text, user_text
from tests.support.server import ARTIFACTS, RunningServer, background_process, free_port, running_server

REMOTE_MODEL = "smollm2-remote"  # the alias the endpoint serves the model under
LONG_PROMPT = "Write a very long story about a dragon and a knight, with many chapters."


@dataclass(frozen=True)
class Endpoint:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def disconnects(self) -> int:
        """How many streams the server saw its client drop (it prints this when it stops generating)."""
        return self.log_path.read_text(errors="replace").count("Disconnected from client")


@contextlib.contextmanager
def llama_cpp_server(
    name: str, port: int | None = None, timeout_s: float = 120.0, extra_args: tuple[str, ...] = ()
) -> Iterator[Endpoint]:
    """``python -m llama_cpp.server`` with the bundled SmolLM2, up and answering ``/v1/models``."""
    port = port or free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"{name}.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(models.resolve("smollm2-135m-instruct")),
        "--model_alias", REMOTE_MODEL,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048",
        *extra_args,
    ]  # fmt: skip
    llama_cpu.prepare()  # llama.cpp's server finds its CPU backend through the environment it inherits
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ready_url = f"http://127.0.0.1:{port}/v1/models"
    with background_process(command, log_path, ready_url, timeout_s, environment) as process:
        yield Endpoint(port, process, log_path)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    with llama_cpp_server("llama-cpp-server") as running:
        yield running


@pytest.fixture(scope="module")
def remote_server(endpoint: Endpoint) -> Iterator[RunningServer]:
    args = ["--llm-base-url", endpoint.base_url, "--llm-model", REMOTE_MODEL]
    with running_server("remote-llm", args=args) as running:
        yield running


@pytest.fixture(scope="module")
def endpoint_streams_usage(endpoint: Endpoint) -> bool:
    """Whether the endpoint honours ``stream_options.include_usage`` (llama-cpp-python 0.3.36 does not)."""
    body = {
        "model": REMOTE_MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 4,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    reply = httpx.post(f"{endpoint.base_url}/chat/completions", json=body, timeout=60)
    chunks = [json.loads(line[5:]) for line in reply.text.splitlines() if line.startswith("data:") and "{" in line]
    return any(chunk.get("usage") for chunk in chunks)


async def wait_until(condition, timeout_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


# --- through Parley: the Realtime API on a remote language model --------------------------------------


def test_models_lists_remote_model(remote_server: RunningServer) -> None:
    listing = httpx.get(f"{remote_server.http_url}/v1/models", timeout=10).json()
    assert [entry["id"] for entry in listing["data"]] == [REMOTE_MODEL]
    ready = httpx.get(f"{remote_server.http_url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["llm"] == REMOTE_MODEL


async def test_text_exchange(remote_server: RunningServer, endpoint_streams_usage: bool) -> None:
    async with asyncio.timeout(120), connect(remote_server) as conn:
        await conn.send(user_text("Say hello in one short sentence."))
        # A generous cap only bounds the run time should the small model ramble.
        await conn.send({"type": "response.create", "response": {"max_output_tokens": 400}})
        done = (await conn.until("response.done"))["response"]
        conn.assert_conformant()

    deltas = [e for e in conn.of_type("response.output_text.delta") if e["response_id"] == done["id"]]
    text = response_text(conn.events, done["id"])
    assert deltas and text.strip()
    assert done["status"] == "completed", done["status_details"]
    assert done["output"][0]["content"][0]["text"] == text

    usage = done["usage"]
    assert usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    if endpoint_streams_usage:
        assert usage["input_tokens"] > 0
    else:  # no count from the endpoint: one token per streamed chunk, the prompt unknown
        assert usage["output_tokens"] == len(deltas)
        assert usage["input_tokens"] == 0


async def test_cancel_mid_stream(
    remote_server: RunningServer, endpoint: Endpoint, endpoint_streams_usage: bool
) -> None:
    async with asyncio.timeout(120), connect(remote_server) as conn:
        await conn.send(user_text(LONG_PROMPT))
        await conn.send({"type": "response.create", "response": {"max_output_tokens": 1500}})
        created = await conn.until("response.created")
        await conn.until("response.output_text.delta")
        dropped_before = endpoint.disconnects()
        await conn.send({"type": "response.cancel"})
        done = (await conn.until("response.done"))["response"]
        assert done["id"] == created["response"]["id"]
        assert done["status"] == "cancelled"
        assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
        # Parley dropped the upstream stream: the endpoint stopped generating.
        await wait_until(lambda: endpoint.disconnects() > dropped_before)
        conn.assert_conformant()

    deltas = [e for e in conn.of_type("response.output_text.delta") if e["response_id"] == done["id"]]
    assert deltas
    if not endpoint_streams_usage:  # what was streamed before the cancel is what is counted
        assert done["usage"]["output_tokens"] == len(deltas)


# --- the engine on its own ----------------------------------------------------------------------------


async def test_engine_streams_text_and_stats(endpoint: Endpoint, endpoint_streams_usage: bool) -> None:
    model = OpenAIChatModel(REMOTE_MODEL, endpoint.base_url)
    try:
        assert model.id == REMOTE_MODEL
        await model.warm_up("You are brief.")  # GET /models/{id} is a 404 there: tolerated
        request = GenerationRequest(messages=[{"role": "user", "content": LONG_PROMPT}], max_tokens=16)
        stream = model.generate(request)
        async with asyncio.timeout(60):
            deltas = [delta async for delta in stream]
    finally:
        await model.close()

    assert "".join(deltas).strip()
    stats = stream.stats
    assert stats.finish_reason == "length"  # 16 tokens cannot finish a long story
    assert 0 < len(deltas) <= 16
    if endpoint_streams_usage:
        assert stats.prompt_tokens > 0 and stats.completion_tokens == 16
    else:
        assert stats.prompt_tokens == 0
        assert stats.completion_tokens == len(deltas)


async def test_engine_close_stops_generation(endpoint: Endpoint) -> None:
    model = OpenAIChatModel(REMOTE_MODEL, endpoint.base_url)
    try:
        dropped_before = endpoint.disconnects()
        # No limit: the request goes out without max_tokens, and only closing the stream ends it early.
        stream = model.generate(GenerationRequest(messages=[{"role": "user", "content": LONG_PROMPT}]))
        async with asyncio.timeout(60):
            received = [await anext(stream.deltas) for _ in range(3)]
            await stream.aclose()
        assert all(received)
        assert stream.stats.finish_reason == "cancelled"
        await wait_until(lambda: endpoint.disconnects() > dropped_before)

        # The endpoint is free again for the next request.
        again = model.generate(GenerationRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=4))
        async with asyncio.timeout(60):
            assert [delta async for delta in again]
    finally:
        await model.close()


async def test_engine_unreachable_endpoint_is_an_engine_error() -> None:
    model = OpenAIChatModel(REMOTE_MODEL, f"http://127.0.0.1:{free_port()}/v1")
    model._client = model._client.with_options(max_retries=0)  # the SDK's retries only slow the test
    try:
        async with asyncio.timeout(30):
            with pytest.raises(EngineError, match="unreachable"):
                await model.warm_up("x")
            with pytest.raises(EngineError, match="request failed"):
                async for _ in model.generate(GenerationRequest(messages=[{"role": "user", "content": "Hi"}])):
                    pass
    finally:
        await model.close()


# --- an endpoint that is not there ---------------------------------------------------------------------


@contextlib.contextmanager
def unready_server(name: str, base_url: str) -> Iterator[RunningServer]:
    """``parley serve`` pointed at ``base_url``, up (``/healthz``) but not waiting for ``/readyz``."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"server-{name}.log"
    command = [
        sys.executable, "-m", "parley.cli", "serve", "--port", str(port),
        "--llm-base-url", base_url, "--llm-model", REMOTE_MODEL,
    ]  # fmt: skip
    environment = {**os.environ, "PARLEY_PROFILE": "fast"}
    healthz = f"http://127.0.0.1:{port}/healthz"
    with background_process(command, log_path, healthz, 60, environment) as process:
        yield RunningServer(port, process, log_path)


def wait_for_readyz(server: RunningServer, status: str, timeout_s: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        reply = httpx.get(f"{server.http_url}/readyz", timeout=5)
        if reply.json()["status"] == status:
            return reply
        assert time.monotonic() < deadline, f"readyz never said {status!r}: {reply.json()}\n{server.log()[-3000:]}"
        time.sleep(0.25)


async def test_unreachable_endpoint_does_not_crash() -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    with unready_server("unreachable-llm", closed) as server:
        reply = wait_for_readyz(server, "failed")
        assert reply.status_code == 503
        assert "unreachable" in reply.json()["error"] and closed in reply.json()["error"]
        assert httpx.get(f"{server.http_url}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{server.http_url}/v1/models", timeout=5).json()["data"] == []

        # A Realtime client is turned away with 503 before any session, not left hanging.
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with asyncio.timeout(30), connect(server):
                pass
        assert refused.value.response.status_code == 503
        assert b"not_ready" in refused.value.response.body

        time.sleep(2)  # a retry or two later, still serving
        assert server.process.poll() is None, server.log()[-3000:]
        assert httpx.get(f"{server.http_url}/readyz", timeout=5).status_code == 503


def test_becomes_ready_when_endpoint_comes_up() -> None:
    port = free_port()
    with unready_server("late-llm", f"http://127.0.0.1:{port}/v1") as server:
        wait_for_readyz(server, "failed")
        with llama_cpp_server("llama-cpp-server-late", port=port):
            reply = wait_for_readyz(server, "ready")
            assert reply.status_code == 200 and reply.json()["llm"] == REMOTE_MODEL
            listing = httpx.get(f"{server.http_url}/v1/models", timeout=10).json()
            assert [entry["id"] for entry in listing["data"]] == [REMOTE_MODEL]
