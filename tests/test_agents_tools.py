"""A real function tool round trip through openai-agents' realtime runner (GA, strict validation).

The agent has a ``@function_tool``; the model (Qwen2.5, deciding with ``tool_choice: auto``) calls it, the
runner runs it and sends its output back with a new ``response.create``, and the model answers with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from agents import function_tool
from agents.realtime import AssistantMessageItem, RealtimeAgent, RealtimeRunConfig, RealtimeRunner

from tests.conformance.validator import assert_conformant
from tests.support.server import RunningServer
from tests.test_agents_runner import RecordingModel, model_config, of_type, runner_errors

TIMEOUT_S = 180.0
calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: The name of the city.
    """
    calls.append(city)
    return f"It is 17 degrees Celsius and sunny in {city}."


async def test_runner_calls_a_function_tool_and_answers_with_its_result(
    qwen_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="openai.agents")
    calls.clear()
    model = RecordingModel()
    agent = RealtimeAgent(name="weather", instructions="You answer questions about the weather.", tools=[get_weather])
    config: RealtimeRunConfig = {"model_settings": {"output_modalities": ["text"]}}
    runner = RealtimeRunner(agent, model=model, config=config)
    seen: list[Any] = []
    raw: list[dict[str, Any]] = []
    async with asyncio.timeout(TIMEOUT_S), await runner.run(model_config=model_config(qwen_server)) as session:
        await session.send_message("What is the weather in Paris right now?")
        async for event in session:
            seen.append(event)
            if event.type == "raw_model_event" and event.data.type == "raw_server_event":
                raw.append(event.data.data)
            elif event.type == "agent_end" and not _made_a_call(of_type(raw, "response.done")[-1]["response"]):
                break  # an answer in words: after the tool's output, or instead of a call
            elif event.type == "error":
                pytest.fail(f"session error: {event.error!r}")

    assert not runner_errors(caplog), runner_errors(caplog)
    done = [e["response"] for e in of_type(raw, "response.done")]
    assert [city.lower() for city in calls] == ["paris"], [response["output"] for response in done]
    # The runner told the server about the tool, and sent its output back for the answer.
    update = model.sent[0]["session"]
    assert [tool["name"] for tool in update["tools"]] == ["get_weather"]
    created = [e["item"] for e in model.sent if e["type"] == "conversation.item.create"]
    outputs = [item for item in created if item["type"] == "function_call_output"]
    assert len(outputs) == 1 and "17 degrees" in outputs[0]["output"]
    assert outputs[0]["call_id"] == done[0]["output"][0]["call_id"]

    assert [item["type"] for item in done[0]["output"]] == ["function_call"]
    assert json.loads(done[0]["output"][0]["arguments"])["city"].lower() == "paris"
    assert done[-1]["status"] == "completed" and done[-1]["output"][0]["type"] == "message"
    answer = done[-1]["output"][0]["content"][0]["text"]
    assert "17" in answer, answer
    history = next(e.history for e in reversed(seen) if e.type == "history_updated")
    assert isinstance(history[-1], AssistantMessageItem)
    assert_conformant(raw, "ga", model.sent, allow_open_responses=True)


def _made_a_call(response: dict[str, Any]) -> bool:
    return any(item["type"] == "function_call" for item in response["output"])
