"""Function calling through a remote OpenAI-compatible model: tools are passed natively and the endpoint's
streamed ``tool_calls`` become ``function_call`` items.

The endpoint is llama-cpp-python's own server with its ``chatml-function-calling`` chat format, which
streams native tool calls when a function is named in ``tool_choice`` (its ``auto`` mode does not stream
calls, and it has no ``required``), so the forced path is what is tested here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import jsonschema
import pytest

from parley.engines.llm import GenerationRequest, ToolCallDelta
from parley.engines.openai_chat import OpenAIChatModel
from tests.support.client import connect, user_text
from tests.support.server import RunningServer, running_server
from tests.test_remote_llm import REMOTE_MODEL, Endpoint, llama_cpp_server

PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}


@pytest.fixture(scope="module")
def tool_endpoint() -> Iterator[Endpoint]:
    with llama_cpp_server("llama-cpp-server-tools", extra_args=("--chat_format", "chatml-function-calling")) as running:
        yield running


@pytest.fixture(scope="module")
def remote_tools_server(tool_endpoint: Endpoint) -> Iterator[RunningServer]:
    args = ["--llm-base-url", tool_endpoint.base_url, "--llm-model", REMOTE_MODEL]
    with running_server("remote-tools", args=args) as running:
        yield running


async def test_engine_maps_streamed_tool_calls(tool_endpoint: Endpoint) -> None:
    model = OpenAIChatModel(REMOTE_MODEL, tool_endpoint.base_url)
    tool = {"type": "function", "function": {"name": "get_forecast", "parameters": PARAMETERS}}
    request = GenerationRequest(
        messages=[{"role": "user", "content": "What's the forecast for Berlin for the next 3 days?"}],
        max_tokens=100,
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "get_forecast"}},
    )
    try:
        async with asyncio.timeout(120):
            deltas = [delta async for delta in model.generate(request)]
    finally:
        await model.close()
    calls = [delta for delta in deltas if isinstance(delta, ToolCallDelta)]
    assert calls and all(not isinstance(delta, str) for delta in deltas), deltas
    assert {delta.index for delta in calls} == {0}
    assert calls[0].name == "get_forecast"
    jsonschema.validate(json.loads("".join(delta.arguments for delta in calls)), PARAMETERS)


async def test_a_forced_call_through_parley(remote_tools_server: RunningServer) -> None:
    tool = {"type": "function", "name": "get_forecast", "description": "The weather forecast.",
            "parameters": PARAMETERS}  # fmt: skip
    async with asyncio.timeout(180), connect(remote_tools_server) as conn:
        await conn.send({"type": "session.update", "session": {"type": "realtime", "tools": [tool]}})
        await conn.until("session.updated")
        await conn.send(user_text("What's the forecast for Berlin for the next 3 days?"))
        choice = {"type": "function", "name": "get_forecast"}
        await conn.send({"type": "response.create", "response": {"tool_choice": choice, "max_output_tokens": 100}})
        done = (await conn.until("response.done"))["response"]
        assert done["status"] == "completed", done
        (call,) = done["output"]
        assert call["type"] == "function_call" and call["name"] == "get_forecast"
        jsonschema.validate(json.loads(call["arguments"]), PARAMETERS)
        assert conn.of_type("response.function_call_arguments.delta")
        conn.assert_conformant()
