"""A language model that dies in native code fails only what it was generating; the server and its sessions go on.

Against a real ``parley serve``: the model's worker process is killed (SIGKILL as the OOM killer does, SIGSEGV as
a crashing kernel does) while it writes an answer. That response ends ``failed`` with the reason, the worker is
started again, the same session's next ``response.create`` is answered, and a second session that was talking
to the server all along sees nothing of it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.client import RecordingConnection, connect, response_text, user_text
from tests.support.server import ARTIFACTS, RunningServer, background_process, free_port, running_server

LONG_ANSWER = "Count from one to two hundred, writing every number out in words."
ANSWERED = ("completed", "incomplete")  # answered, maybe cut at max_output_tokens


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with running_server("engine-crash") as running:
        yield running


def readyz(server: RunningServer) -> dict[str, object]:
    return httpx.get(f"{server.http_url}/readyz", timeout=5).json()


def wait_until_ready(server: RunningServer, timeout_s: float = 120.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while (report := readyz(server))["status"] != "ready":
        assert time.monotonic() < deadline, f"not ready again: {report}\n{server.log()[-3000:]}"
        time.sleep(0.2)
    return report


def worker_pid(server: RunningServer) -> int:
    engine = wait_until_ready(server)["engine"]
    assert isinstance(engine, dict) and engine["state"] == "ready", engine
    pid = engine["worker_pid"]
    assert isinstance(pid, int) and pid != server.process.pid
    assert Path(f"/proc/{pid}").exists()
    return pid


async def answer(conn: RecordingConnection, text: str, max_tokens: int | str = 40) -> dict[str, object]:
    await conn.send(user_text(text))
    await conn.send({"type": "response.create", "response": {"max_output_tokens": max_tokens}})
    return (await conn.until("response.done"))["response"]


def test_readyz_reports_the_cpu_and_the_engine_variant(server: RunningServer) -> None:
    report = wait_until_ready(server)
    cpu, engine = report["cpu"], report["engine"]
    assert isinstance(cpu, dict) and isinstance(engine, dict)
    flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0]
    assert ("avx2" in cpu["flags"]) == (" avx2" in flags)
    llama = engine["llama_cpp"]
    assert isinstance(llama, dict)
    assert llama["variant"] in llama["runnable"] and llama["variant"] != "sapphirerapids"
    assert f"llama.cpp CPU variant: {llama['variant']}" in server.log()


@pytest.mark.parametrize("death", [signal.SIGKILL, signal.SIGSEGV], ids=["sigkill", "sigsegv"])
async def test_a_dead_worker_fails_only_its_response(server: RunningServer, death: signal.Signals) -> None:
    async with connect(server) as caller, connect(server) as bystander:
        first = await answer(bystander, "Say hello.")
        assert first["status"] in ANSWERED
        pid = worker_pid(server)
        restarts = wait_until_ready(server)["engine"]["restarts"]  # type: ignore[index]

        await caller.send(user_text(LONG_ANSWER))
        await caller.send({"type": "response.create", "response": {"max_output_tokens": "inf"}})
        await caller.until("response.output_text.delta")
        os.kill(pid, death)
        done = (await caller.until("response.done", timeout=30))["response"]
        assert done["status"] == "failed", done
        error = done["status_details"]["error"]
        assert error["code"] == "model_crashed" and death.name in error["message"], error
        assert not caller.of_type("error"), caller.of_type("error")

        # The same session goes on as soon as it asks: the request waits for the new worker.
        again = await answer(caller, "Say hello again.")
        assert again["status"] in ANSWERED and response_text(caller.events, again["id"]), again
        report = wait_until_ready(server)
        engine = report["engine"]
        assert engine["worker_pid"] != pid and engine["restarts"] == restarts + 1, engine  # type: ignore[index]
        assert death.name in engine["last_exit"]  # type: ignore[index]

        # The bystander's session never noticed: no error, no closed socket, and it answers with its history.
        later = await answer(bystander, "Say goodbye.")
        assert later["status"] in ANSWERED
        assert not bystander.of_type("error")
        bystander.assert_conformant()
        caller.assert_conformant()
    assert server.process.poll() is None


async def test_a_dead_idle_worker_is_replaced_before_anyone_asks(server: RunningServer) -> None:
    pid = worker_pid(server)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while readyz(server)["status"] == "ready" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    report = wait_until_ready(server)
    assert report["engine"]["worker_pid"] != pid  # type: ignore[index]
    metrics = httpx.get(f"{server.http_url}/metrics", timeout=5).text
    assert 'parley_llm_worker_exits_total{reason="was killed by SIGKILL"}' in metrics


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ({"PARLEY_LLAMA_CPU_VARIANT": "pentium"}, "PARLEY_LLAMA_CPU_VARIANT=pentium: not built"),
        ({"PARLEY_LLM": "{garbage}"}, "loading the language model failed"),
    ],
    ids=["unknown-cpu-variant", "unloadable-weights"],
)
def test_a_model_that_fails_its_start_is_never_reported_ready(
    tmp_path: Path, setting: dict[str, str], reason: str
) -> None:
    garbage = tmp_path / "broken.gguf"
    garbage.write_bytes(b"GGUF" + os.urandom(4096))
    env = {name: value.format(garbage=garbage) for name, value in setting.items()}
    port = free_port()
    log_path = ARTIFACTS / f"server-engine-start-{next(iter(env)).lower()}.log"
    command = [sys.executable, "-m", "parley.cli", "serve", "--port", str(port)]
    environment = {**os.environ, "PARLEY_PROFILE": "fast", **env}
    with background_process(command, log_path, f"http://127.0.0.1:{port}/healthz", 60, environment) as process:
        deadline = time.monotonic() + 120
        while (reply := httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)).json()["status"] == "loading":
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.25)
        assert reply.status_code == 503
        report = reply.json()
        assert report["status"] == "failed" and reason in report["error"], report
        assert reason in log_path.read_text()
        assert process.poll() is None  # the server stays up to say why
