"""A response's function-call items when the model misbehaves: a small fake engine stands in for a remote
model that emits broken tool JSON, calls a tool it was not given, or is cut off mid-call.

The events still go through the strict validator: a failed call must leave a conformant stream.
"""

from __future__ import annotations

from typing import Any

import pytest

from parley.engines.llm import ToolCallDelta
from parley.realtime.conversation import Conversation, chat_messages
from parley.realtime.dialect import Dialect
from parley.realtime.items import Item
from parley.realtime.response import Response
from parley.realtime.response_params import GAResponseCreate
from parley.realtime.session_config import FunctionTool, SessionConfig
from tests.conformance.validator import assert_conformant
from tests.support.scripted import RecordingSink, ScriptedModel

WEATHER = FunctionTool(
    name="get_weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


async def _run(deltas: list[str | ToolCallDelta], finish_reason: str = "stop") -> tuple[dict[str, Any], RecordingSink]:
    config = SessionConfig.initial(Dialect.GA, id="sess_x", model="m", expires_at=0, instructions="Be helpful.")
    config = config.model_copy(update={"modalities": ["text"], "tools": [WEATHER]})
    sink = RecordingSink(config)
    conversation = Conversation()
    params = GAResponseCreate().to_params(config, conversation)
    response = Response(sink, params, conversation, ScriptedModel(deltas, finish_reason))  # type: ignore[arg-type]
    await response.start()
    assert_conformant(sink.events, "ga")
    return sink.events[-1]["response"], sink


async def test_arguments_stream_as_deltas_after_a_message() -> None:
    deltas: list[str | ToolCallDelta] = [
        "Let me check.",
        ToolCallDelta(0, name="get_weather"),
        ToolCallDelta(0, arguments='{"city": '),
        ToolCallDelta(0, arguments='"Oslo"}'),
    ]
    response, sink = await _run(deltas)
    assert response["status"] == "completed"
    message, call = response["output"]
    assert message["content"][0]["text"] == "Let me check."
    assert call["arguments"] == '{"city": "Oslo"}' and call["status"] == "completed"
    arguments = [e for e in sink.events if e["type"] == "response.function_call_arguments.delta"]
    assert [e["delta"] for e in arguments] == ['{"city": ', '"Oslo"}']
    assert {e["output_index"] for e in arguments} == {1}


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [('{"city": "Oslo"', "not valid JSON"), ('{"town": "Oslo"}', "does not match the parameters schema")],
)
async def test_broken_arguments_fail_the_response_and_stay_out_of_the_context(arguments: str, problem: str) -> None:
    response, _ = await _run([ToolCallDelta(0, name="get_weather"), ToolCallDelta(0, arguments=arguments)])
    assert response["status"] == "failed"
    error = response["status_details"]["error"]
    assert error["code"] == "invalid_function_call"
    assert "get_weather" in error["message"] and problem in error["message"]
    (call,) = response["output"]
    assert call["status"] == "incomplete" and call["arguments"] == arguments
    # The next response does not see a call that was never handed over.
    conversation = Conversation()
    conversation.insert(Item(id="item_u", type="message", role="user", content=[]))
    conversation.insert(Item(id=call["id"], type="function_call", status="incomplete", call_id=call["call_id"],
                             name="get_weather", arguments=arguments))  # fmt: skip
    assert not any(m.get("tool_calls") for m in chat_messages("", conversation.items))


async def test_a_call_to_a_tool_not_offered_fails_without_an_item() -> None:
    response, _ = await _run([ToolCallDelta(0, name="launch_rockets"), ToolCallDelta(0, arguments="{}")])
    assert response["status"] == "failed"
    assert response["status_details"]["error"]["code"] == "invalid_function_call"
    assert "launch_rockets" in response["status_details"]["error"]["message"]
    assert response["output"] == []


async def test_a_call_cut_off_by_the_token_limit_is_incomplete() -> None:
    deltas: list[str | ToolCallDelta] = [ToolCallDelta(0, name="get_weather"), ToolCallDelta(0, arguments='{"ci')]
    response, _ = await _run(deltas, finish_reason="length")
    assert response["status"] == "incomplete"
    assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"


async def test_several_calls_get_their_own_items() -> None:
    deltas: list[str | ToolCallDelta] = [
        ToolCallDelta(0, name="get_weather", arguments='{"city": "Oslo"}'),
        ToolCallDelta(1, name="get_weather", arguments='{"city": "Rome"}'),
    ]
    response, sink = await _run(deltas)
    assert response["status"] == "completed"
    assert [json_args["arguments"] for json_args in response["output"]] == ['{"city": "Oslo"}', '{"city": "Rome"}']
    added = [e for e in sink.events if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in added] == [0, 1]
    assert len({e["item"]["call_id"] for e in added}) == 2
