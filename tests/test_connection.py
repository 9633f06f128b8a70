"""The handshake and the session's edges: keys, subprotocols, dialect choice, expiry, bind safety."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import openai
import pytest
import websockets

from parley.config import Settings
from tests.conftest import TEST_KEYS
from tests.support.client import connect, sdk_client
from tests.support.server import RunningServer, running_server


@pytest.fixture(scope="module")
def short_server() -> Iterator[RunningServer]:
    with running_server("short-sessions", env={"PARLEY_MAX_SESSION_MINUTES": "0.05"}) as running:
        yield running


async def _first_event(url: str, **kwargs: object) -> tuple[dict[str, object], str | None]:
    async with websockets.connect(url, **kwargs) as ws:  # type: ignore[arg-type]
        return json.loads(await ws.recv()), ws.subprotocol


async def test_browser_subprotocols_select_realtime_and_beta(keyed_server: RunningServer) -> None:
    offered = ["realtime", f"openai-insecure-api-key.{TEST_KEYS[0]}", "openai-beta.realtime-v1"]
    event, chosen = await _first_event(f"{keyed_server.ws_url}?model=gpt-4o-realtime-preview", subprotocols=offered)
    assert chosen == "realtime"
    assert event["type"] == "session.created"
    assert "modalities" in event["session"]  # the beta shape


async def test_ga_browser_subprotocols(keyed_server: RunningServer) -> None:
    offered = ["realtime", f"openai-insecure-api-key.{TEST_KEYS[1]}"]
    event, chosen = await _first_event(
        f"{keyed_server.ws_url}?model=gpt-realtime&voice=alloy&x=1", subprotocols=offered
    )
    assert chosen == "realtime"
    assert event["session"]["type"] == "realtime"  # type: ignore[index]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {TEST_KEYS[0]}"},
        {"api-key": TEST_KEYS[1]},
    ],
)
async def test_keys_in_headers_are_accepted(keyed_server: RunningServer, headers: dict[str, str]) -> None:
    event, _ = await _first_event(keyed_server.ws_url, additional_headers=headers)
    assert event["type"] == "session.created"


@pytest.mark.parametrize(
    ("headers", "subprotocols"),
    [
        ({}, None),
        ({"Authorization": "Bearer wrong-key"}, None),
        ({}, ["realtime", "openai-insecure-api-key.wrong-key"]),
    ],
)
async def test_missing_or_wrong_key_is_refused_before_any_session(
    keyed_server: RunningServer, headers: dict[str, str], subprotocols: list[str] | None
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await _first_event(keyed_server.ws_url, additional_headers=headers, subprotocols=subprotocols)
    assert refused.value.response.status_code == 401
    assert b"invalid_api_key" in refused.value.response.body


async def test_sdk_client_with_a_key(keyed_server: RunningServer) -> None:
    async with connect(keyed_server, "ga", api_key=TEST_KEYS[0]) as conn:
        assert conn.events[0]["type"] == "session.created"
    client = sdk_client(keyed_server, api_key="wrong-key")
    with pytest.raises(Exception, match="401"):
        async with client.realtime.connect(model="gpt-realtime") as connection:
            await connection.recv()
    models = await sdk_client(keyed_server, api_key=TEST_KEYS[1]).models.list()
    assert [model.id for model in models.data] == ["smollm2-135m-instruct"]
    with pytest.raises(openai.AuthenticationError):
        await client.models.list()


def test_health_needs_no_key(keyed_server: RunningServer) -> None:
    assert httpx.get(f"{keyed_server.http_url}/healthz").status_code == 200
    assert httpx.get(f"{keyed_server.http_url}/readyz").status_code == 200


async def test_session_expires_with_an_error_and_close_1000(short_server: RunningServer) -> None:
    async with websockets.connect(short_server.ws_url) as ws:
        created = json.loads(await ws.recv())
        assert created["session"]["expires_at"] > 0
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout=15))
        assert event["type"] == "error"
        assert event["error"]["code"] == "session_expired"
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), timeout=10)
        assert ws.close_code == 1000


def test_public_bind_without_keys_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "parley.cli", "serve", "--host", "0.0.0.0", "--port", "9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "without API keys" in result.stderr


def test_bind_rules() -> None:
    Settings(host="127.0.0.1").check_bind()
    Settings(host="0.0.0.0", api_keys=["k"]).check_bind()
    Settings(host="0.0.0.0", allow_insecure_public_bind=True).check_bind()
    with pytest.raises(ValueError, match="without API keys"):
        Settings(host="0.0.0.0").check_bind()


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_API_KEYS", "one, two,,three")
    assert Settings().api_keys == ["one", "two", "three"]
