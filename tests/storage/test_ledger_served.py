"""The usage ledger and transcripts of a real server: written as acknowledged, kept through kill -9, reported
by the commands and the HTTP routes; a database failing mid-session does not stop it. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import httpx
import pytest

from tests.storage.operators import create_key, database_env, parley, parley_json
from tests.support.client import RecordingConnection, connect, user_text
from tests.support.postgres import PostgresCluster
from tests.support.server import free_port, running_server

SAID = 'My name is Robert\'); DROP TABLE items;-- and I say "hello" 100% \\ ünï'
LOOKUP = {
    "type": "function",
    "name": "find_patient",
    "description": "Find a patient by name.",
    "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
}


async def turn(conn: RecordingConnection, text: str, **response: Any) -> dict[str, Any]:
    await conn.send(user_text(text))
    await conn.send({"type": "response.create", **({"response": response} if response else {})})
    return (await conn.until("response.done"))["response"]


def acknowledged_items(conn: RecordingConnection) -> list[str]:
    return [event["item"]["id"] for event in conn.of_type("conversation.item.done")]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_kill_9_after_response_done_loses_nothing_acknowledged(kind: str, request: pytest.FixtureRequest) -> None:
    env = database_env(kind, request)
    key = create_key(env, 'Bank "O\'Hara"')
    port = free_port()
    with running_server(f"kill-{kind}", env=env, port=port, expect_alive=False) as server:
        async with connect(server, "ga", api_key=key) as conn:
            first = await turn(conn, SAID)
            call_done = await turn(
                conn,
                "Look up the patient Ada.",
                tools=[LOOKUP],
                tool_choice={"type": "function", "name": "find_patient"},
            )
            call = next(item for item in call_done["output"] if item["type"] == "function_call")
            output = {"type": "function_call_output", "call_id": call["call_id"], "output": '{"found": "Ada; --"}'}
            await conn.send({"type": "conversation.item.create", "item": output})
            await conn.until("conversation.item.done")
            last = await turn(conn, "Thank you.")
            session_id = conn.events[0]["session"]["id"]
            items = acknowledged_items(conn)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(10)
    responses = {r["id"]: r["usage"] for r in (first, call_done, last)}

    with running_server(f"kill-{kind}-again", env=env, port=port) as again:
        headers = {"Authorization": f"Bearer {key}"}
        stored = httpx.get(f"{again.http_url}/v1/parley/sessions/{session_id}", headers=headers).json()
        assert [item["id"] for item in stored["items"]] == items
        kinds = [item["type"] for item in stored["items"]]
        assert kinds.count("function_call") == 1 and kinds.count("function_call_output") == 1
        assert stored["items"][0]["content"][0]["text"] == SAID
        # The killed run's session was closed by the restart on the same host and port.
        assert stored["end_reason"] == "server_stopped"
        (line,) = httpx.get(f"{again.http_url}/v1/parley/usage", headers=headers).json()["data"]
        assert line["responses"] == 3
        reported = [usage["input_token_details"]["text_tokens"] for usage in responses.values()]
        assert line["text_input_tokens"] == sum(reported)
        assert line["text_output_tokens"] == sum(u["output_token_details"]["text_tokens"] for u in responses.values())
        assert line["cost_usd"] > 0
    # The same, from the commands.
    text = parley(env, "sessions", "show", session_id).stdout
    assert SAID in text and "call: find_patient(" in text and "result: " in text
    exported = json.loads(parley(env, "sessions", "export", session_id, "--format", "json").stdout)
    assert [item["id"] for item in exported["items"]] == items
    assert parley_json(env, "usage")[0]["responses"] == 3
    csv = parley(env, "usage", "--csv").stdout.strip().splitlines()
    assert csv[0].startswith("project,key_id,sessions,responses") and len(csv) == 2


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_transcripts_are_scoped_to_their_project_and_deleted_on_request(
    kind: str, request: pytest.FixtureRequest
) -> None:
    env = database_env(kind, request)
    mine, theirs = create_key(env, "clinic"), create_key(env, "bank")
    with running_server(f"scope-{kind}", env=env) as server:
        async with connect(server, "ga", api_key=mine) as conn:
            await turn(conn, SAID)
            session_id = conn.events[0]["session"]["id"]
        url = f"{server.http_url}/v1/parley/sessions/{session_id}"
        assert httpx.get(url, headers={"Authorization": f"Bearer {theirs}"}).status_code == 404
        assert httpx.get(url, headers={"Authorization": "Bearer nobody"}).status_code == 401
        text = httpx.get(url, params={"format": "txt"}, headers={"Authorization": f"Bearer {mine}"}).text
        assert f"user: {SAID}" in text and "assistant: " in text
        bank = httpx.get(f"{server.http_url}/v1/parley/usage", headers={"Authorization": f"Bearer {theirs}"})
        assert bank.json()["data"] == []
        assert httpx.delete(url, headers={"Authorization": f"Bearer {mine}"}).json()["deleted"] is True
        assert httpx.get(url, headers={"Authorization": f"Bearer {mine}"}).status_code == 404
    assert parley(env, "sessions", "show", session_id, check=False).returncode == 1
    assert parley_json(env, "usage")[0]["responses"] == 1  # the bill stays


async def test_a_database_going_down_mid_session_is_counted_and_caught_up(postgres: PostgresCluster) -> None:
    env = {"PARLEY_DATABASE_URL": postgres.new_database()}
    with running_server("pg-outage", env=env) as server:
        async with connect(server, "ga") as conn:
            await turn(conn, "Hello before.")
            postgres.pause()
            try:
                await turn(conn, "Hello during the outage.")  # the session goes on
                metrics = httpx.get(f"{server.http_url}/metrics").text
                failures = [line for line in metrics.splitlines() if line.startswith("parley_storage_write_failures")]
                assert any('kind="transient"' in line and not line.endswith(" 0.0") for line in failures), failures
                pending = next(
                    line for line in metrics.splitlines() if line.startswith("parley_storage_pending_writes")
                )
                assert float(pending.split()[-1]) > 0
            finally:
                postgres.resume()
            await turn(conn, "Hello after.")
            session_id = conn.events[0]["session"]["id"]
            items = acknowledged_items(conn)
        for _ in range(100):  # the writer retries with backoff: wait until it caught up
            stored = httpx.get(f"{server.http_url}/v1/parley/sessions/{session_id}")
            if stored.status_code == 200 and len(stored.json()["items"]) == len(items):
                break
            await asyncio.sleep(0.2)
        assert [item["id"] for item in stored.json()["items"]] == items
        assert httpx.get(f"{server.http_url}/v1/parley/usage").json()["data"][0]["responses"] == 3
