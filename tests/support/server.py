"""Start a real ``parley serve`` process on a free loopback port and wait until it is ready."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass(frozen=True)
class RunningServer:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def background_process(
    command: list[str], log_path: Path, ready_url: str, timeout_s: float, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` (output to ``log_path``), wait until ``ready_url`` answers 200, stop it afterwards."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, log_path, ready_url, timeout_s)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def running_server(
    name: str,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    ready_timeout_s: float = 240.0,
    port: int | None = None,
    expect_alive: bool = True,
) -> Iterator[RunningServer]:
    """A server with the ``fast`` profile unless ``env`` says otherwise, and a database of its own (a SQLite file
    in a fresh data folder) unless ``env`` names one; stopped (and checked alive, unless a test kills it) after."""
    port = port or free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"server-{name}.log"
    data_dir = tempfile.mkdtemp(prefix=f"parley-{name}-")
    environment = {**os.environ, "PARLEY_PROFILE": "fast", "PARLEY_DATA_DIR": data_dir, **(env or {})}
    command = [sys.executable, "-m", "parley.cli", "serve", "--port", str(port), *(args or [])]
    ready_url = f"http://127.0.0.1:{port}/readyz"
    with background_process(command, log_path, ready_url, ready_timeout_s, environment) as process:
        server = RunningServer(port, process, log_path)
        yield server
        assert not expect_alive or process.poll() is None, (
            f"server {name} died during the tests:\n{server.log()[-3000:]}"
        )


def _wait_ready(process: subprocess.Popen[bytes], log_path: Path, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited early:\n{log_path.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise TimeoutError(f"{url} not ready after {timeout_s}s:\n{log_path.read_text(errors='replace')[-3000:]}")
