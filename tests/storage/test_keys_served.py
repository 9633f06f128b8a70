"""Stored keys and their limits on a real server, through the official SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import websockets

from tests.storage.operators import create_key, database_env, parley
from tests.support.client import connect, response_text, user_text
from tests.support.server import RunningServer, running_server

PROJECT = 'Clinic\'; DROP TABLE api_keys;-- "Nord"'


@dataclass
class Served:
    server: RunningServer
    env: dict[str, str]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    env = database_env(request.param, request)
    # A key exists before the start: the server then requires keys.
    create_key(env, "bootstrap")
    with running_server(f"keys-{request.param}", env=env) as server:
        yield Served(server, env)


async def refused(served: Served, key: str) -> tuple[int, dict[str, object]]:
    with pytest.raises(websockets.InvalidStatus) as caught:
        async with connect(served.server, "ga", api_key=key):
            pass
    return caught.value.response.status_code, json.loads(caught.value.response.body)


async def test_a_key_over_its_sessions_limit_is_refused_with_429(served: Served) -> None:
    key = create_key(served.env, PROJECT, "--max-sessions", "1")
    async with connect(served.server, "ga", api_key=key):
        status, body = await refused(served, key)
        assert status == 429
        assert body["error"]["code"] == "rate_limit_exceeded"  # type: ignore[index]
        assert "concurrent sessions" in body["error"]["message"]  # type: ignore[index]
    async with connect(served.server, "ga", api_key=key) as conn:  # the first one closed: room again
        await conn.send(user_text("Say hi."))
        await conn.send({"type": "response.create"})
        await conn.until("response.done")


async def test_sessions_per_minute_are_limited_and_reported_in_rate_limits_updated(served: Served) -> None:
    key = create_key(served.env, PROJECT, "--rpm", "2")
    async with connect(served.server, "ga", api_key=key):
        pass
    async with connect(served.server, "ga", api_key=key) as conn:
        await conn.send(user_text("Say hi."))
        await conn.send({"type": "response.create"})
        await conn.until("response.done")
        limits = await conn.next()
        assert limits["type"] == "rate_limits.updated"
        (requests,) = limits["rate_limits"]
        assert (requests["name"], requests["limit"], requests["remaining"]) == ("requests", 2, 0)
        assert 0 < requests["reset_seconds"] <= 60
        conn.assert_conformant()
    status, body = await refused(served, key)
    assert status == 429 and "per min" in body["error"]["message"]  # type: ignore[index]


async def test_revoked_expired_and_unknown_keys_get_401(served: Served) -> None:
    revoked = create_key(served.env, PROJECT)
    parley(served.env, "keys", "revoke", revoked[:16])
    expired = create_key(served.env, PROJECT, "--expires", "2001-01-01")
    for key, why in ((revoked, "revoked"), (expired, "expired"), ("sk-parley-unknown", "invalid")):
        status, body = await refused(served, key)
        assert status == 401, key
        assert body["error"]["code"] == "invalid_api_key" and why in body["error"]["message"]  # type: ignore[index]
    listed = parley(served.env, "keys", "list", "--json").stdout
    assert PROJECT in json.loads(listed)[-1]["project"]
    assert revoked not in listed and expired not in listed


async def test_audio_minutes_per_day_end_a_session_with_an_error_and_close_4000(served: Served) -> None:
    key = create_key(served.env, PROJECT, "--minutes-per-day", "0.05")  # 3 s of audio
    silence = base64.b64encode(bytes(24000)).decode()  # 0.5 s of 24 kHz pcm16
    async with connect(served.server, "ga", api_key=key) as conn:
        await conn.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "turn_detection": None}}}})  # fmt: skip
        for _ in range(8):
            await conn.send({"type": "input_audio_buffer.append", "audio": silence})
        error = await conn.expect_error()
        assert error["code"] == "rate_limit_exceeded" and "minutes per day" in error["message"]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await conn.next(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
    status, body = await refused(served, key)
    assert status == 429 and "minutes per day" in body["error"]["message"]  # type: ignore[index]


async def test_client_secrets_minted_with_a_stored_key_count_against_it(served: Served) -> None:
    key = create_key(served.env, PROJECT, "--max-sessions", "1")
    minted = httpx.post(
        f"{served.server.http_url}/v1/realtime/client_secrets", headers={"Authorization": f"Bearer {key}"}, json={}
    )
    secret = minted.json()["value"]
    async with connect(served.server, "ga", api_key=secret) as conn:
        status, _ = await refused(served, key)
        assert status == 429
        await conn.send(user_text("Say hi."))
        await conn.send({"type": "response.create"})
        done = await conn.until("response.done")
        assert response_text(conn.events, done["response"]["id"])
    sessions = httpx.get(f"{served.server.http_url}/v1/parley/sessions", headers={"Authorization": f"Bearer {key}"})
    assert {s["project"] for s in sessions.json()["data"]} == {PROJECT}


def test_a_database_that_is_down_stops_the_start() -> None:
    started = time.monotonic()
    done = parley({"PARLEY_DATABASE_URL": "postgresql://parley@127.0.0.1:1/parley"}, "serve", check=False)
    assert done.returncode == 2
    assert "cannot open the database" in done.stderr and "127.0.0.1" in done.stderr
    assert time.monotonic() - started < 60
