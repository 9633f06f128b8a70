"""Short-lived client secrets, minted and used with the official SDK, and as a browser would use them."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import openai
import pytest
import websockets
from openai.types.beta.realtime.session_create_response import SessionCreateResponse
from openai.types.realtime.client_secret_create_response import ClientSecretCreateResponse
from pydantic import BaseModel

from tests.conformance.validator import _extra_keys
from tests.conftest import TEST_KEYS
from tests.support.client import connect, sdk_client
from tests.support.server import RunningServer

# Keys real OpenAI responses carry that the SDK's beta response type does not declare.
BETA_EXTRAS = {
    "id",
    "object",
    "model",
    "expires_at",
    "input_audio_noise_reduction",
    "turn_detection.create_response",
    "turn_detection.interrupt_response",
}


def strictly(model: type[BaseModel], raw: dict[str, Any], allowed_extras: set[str] = frozenset()) -> BaseModel:  # type: ignore[assignment]
    """Validate ``raw`` against an SDK type strictly, with no undeclared keys beyond ``allowed_extras``."""
    parsed = model.model_validate(raw, strict=True)
    extras = set(_extra_keys(parsed)) - allowed_extras
    assert not extras, extras
    return parsed


async def test_ga_secret_carries_its_session_and_opens_sessions_with_it(keyed_server: RunningServer) -> None:
    client = sdk_client(keyed_server, TEST_KEYS[0])
    preset = {
        "type": "realtime",
        "instructions": "Answer like a pirate.",
        "audio": {"output": {"voice": "ash"}},
        "max_output_tokens": 40,
    }
    created = await client.realtime.client_secrets.with_raw_response.create(
        session=preset,  # type: ignore[arg-type]
        expires_after={"anchor": "created_at", "seconds": 120},
    )
    body = json.loads(created.text)
    secret = strictly(ClientSecretCreateResponse, body)
    assert secret.value.startswith("ek_")
    assert abs(secret.expires_at - (time.time() + 120)) < 5
    assert body["session"]["instructions"] == "Answer like a pirate."
    assert body["session"]["audio"]["output"]["voice"] == "ash"

    # The SDK connects with the secret as its key; the session starts with the minted settings.
    async with connect(keyed_server, api_key=secret.value, speak=True) as conn:
        session = conn.events[0]["session"]
        assert session["instructions"] == "Answer like a pirate."
        assert session["audio"]["output"]["voice"] == "ash"
        assert session["max_output_tokens"] == 40

    # A browser offers it as a subprotocol, and the secret serves more than one session until it expires.
    for _ in range(2):
        assert (await _browser_session(keyed_server, secret.value))["instructions"] == "Answer like a pirate."
    await client.close()


async def test_beta_session_endpoint_mints_a_secret(keyed_server: RunningServer) -> None:
    client = sdk_client(keyed_server, TEST_KEYS[1])
    created = await client.beta.realtime.sessions.with_raw_response.create(
        model="gpt-4o-mini-realtime-preview", voice="verse", instructions="Be brief.", modalities=["text"]
    )
    session = strictly(SessionCreateResponse, json.loads(created.text), BETA_EXTRAS)
    assert session.client_secret.value.startswith("ek_")
    assert 550 < session.client_secret.expires_at - time.time() <= 600  # the default lifetime, ten minutes
    assert (session.voice, session.instructions, session.modalities) == ("verse", "Be brief.", ["text"])

    async with connect(keyed_server, "beta", api_key=session.client_secret.value, speak=True) as conn:
        started = conn.events[0]["session"]
        assert (started["voice"], started["instructions"], started["modalities"]) == ("verse", "Be brief.", ["text"])
    await client.close()


async def test_minting_needs_a_real_key(keyed_server: RunningServer) -> None:
    anonymous = sdk_client(keyed_server, "not-a-key")
    with pytest.raises(openai.AuthenticationError):
        await anonymous.realtime.client_secrets.create()
    secret = (await sdk_client(keyed_server, TEST_KEYS[0]).realtime.client_secrets.create()).value
    with pytest.raises(openai.AuthenticationError):  # a secret opens sessions, it does not mint more secrets
        await sdk_client(keyed_server, secret).realtime.client_secrets.create()
    with pytest.raises(openai.AuthenticationError):
        await sdk_client(keyed_server, secret).models.list()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"expires_after": {"anchor": "created_at", "seconds": 5}}, "expires_after.seconds"),
        ({"session": {"type": "realtime", "audio": {"output": {"speed": 9}}}}, "session.audio.output.speed"),
        ({"session": {"type": "transcription"}}, "session.type"),
    ],
)
async def test_bad_requests_name_the_field(keyed_server: RunningServer, body: dict[str, Any], param: str) -> None:
    client = sdk_client(keyed_server, TEST_KEYS[0])
    with pytest.raises(openai.BadRequestError) as refused:
        await client.post("/realtime/client_secrets", body=body, cast_to=object)
    assert refused.value.body["param"] == param  # type: ignore[index]


async def test_an_expired_secret_is_refused(keyed_server: RunningServer) -> None:
    client = sdk_client(keyed_server, TEST_KEYS[0])
    secret = await client.realtime.client_secrets.create(expires_after={"anchor": "created_at", "seconds": 10})
    await _browser_session(keyed_server, secret.value)
    await asyncio.sleep(max(0.0, secret.expires_at - time.time()) + 1)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await _browser_session(keyed_server, secret.value)
    assert refused.value.response.status_code == 401


async def _browser_session(server: RunningServer, secret: str) -> dict[str, Any]:
    """Connect as openai-node does in a browser: the key travels as a subprotocol; return session.created."""
    protocols = ["realtime", f"openai-insecure-api-key.{secret}"]
    async with websockets.connect(server.ws_url, subprotocols=protocols) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "realtime"
        event = json.loads(await ws.recv())
        assert event["type"] == "session.created"
        return event["session"]
