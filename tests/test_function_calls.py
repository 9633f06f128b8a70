"""Function calling (PROTOCOL.md §3.4) with the official SDK clients, GA and beta, events validated strictly.

Forced calls (``required``, a named function) run on the ``fast`` server: the grammar writes the call, so
even SmolLM2 makes valid ones. Where the model must decide for itself (``auto``) and where its answer must
use a tool's result, the tests use a server with the default profile's Qwen2.5 model.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from tests.support.client import RecordingConnection, connect, response_text, user_text
from tests.support.server import RunningServer

DIALECTS = ["ga", "beta"]

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
}
BOOKING = {
    "type": "function",
    "name": "book_table",
    "description": "Book a table at a restaurant.",
    "parameters": {
        "type": "object",
        "properties": {
            "restaurant": {"type": "string"},
            "people": {"type": "integer", "minimum": 1, "maximum": 20},
            "time": {"type": "string", "description": "Time of the booking, e.g. 19:30"},
        },
        "required": ["restaurant", "people", "time"],
    },
}
SCHEMAS = {tool["name"]: tool["parameters"] for tool in (WEATHER, BOOKING)}


def _named(dialect: str, name: str) -> Any:
    return {"type": "function", "name": name} if dialect == "ga" else name


def _session(dialect: str, **fields: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "realtime", **fields} if dialect == "ga" else fields}


async def _respond(conn: RecordingConnection, response: dict[str, Any] | None = None) -> dict[str, Any]:
    await conn.send({"type": "response.create", **({"response": response} if response else {})})
    return (await conn.until("response.done"))["response"]


def _calls(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in response["output"] if item["type"] == "function_call"]


def _assert_valid_call(call: dict[str, Any]) -> dict[str, Any]:
    assert call["status"] == "completed", call
    assert call["call_id"].startswith("call_")
    arguments = json.loads(call["arguments"])
    jsonschema.validate(arguments, SCHEMAS[call["name"]])
    return arguments


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_named_tool_choice_forces_that_call(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as conn:
        await conn.send(_session(dialect, tools=[WEATHER, BOOKING], tool_choice=_named(dialect, "get_weather")))
        session = (await conn.until("session.updated"))["session"]
        assert [tool["name"] for tool in session["tools"]] == ["get_weather", "book_table"]
        await conn.send(user_text("What's the weather like in Paris today?"))
        await conn.until("conversation.item.done" if dialect == "ga" else "conversation.item.created")
        start = len(conn.events)
        response = await _respond(conn)

        assert response["status"] == "completed", response
        (call,) = response["output"]
        assert call["type"] == "function_call" and call["name"] == "get_weather"
        _assert_valid_call(call)
        names = [e["type"] for e in conn.events[start:] if e["type"] != "response.function_call_arguments.delta"]
        if dialect == "ga":
            expected = [
                "response.created", "response.output_item.added", "conversation.item.added",
                "response.function_call_arguments.done", "conversation.item.done", "response.output_item.done",
                "response.done",
            ]  # fmt: skip
        else:
            expected = [
                "response.created", "response.output_item.added", "conversation.item.created",
                "response.function_call_arguments.done", "response.output_item.done", "response.done",
            ]  # fmt: skip
        assert names == expected
        added = conn.of_type("response.output_item.added")[-1]["item"]
        assert added["status"] == "in_progress" and added["arguments"] == "" and added["call_id"] == call["call_id"]
        done = conn.of_type("response.function_call_arguments.done")[-1]
        assert done["arguments"] == call["arguments"] and done["call_id"] == call["call_id"]
        assert ("name" in done) == (dialect == "ga")
        assert conn.of_type("response.function_call_arguments.delta")
        conn.assert_conformant()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_function_call_output_feeds_the_follow_up_response(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as conn:
        await conn.send(_session(dialect, tools=[WEATHER], tool_choice="required"))
        await conn.until("session.updated")
        await conn.send(user_text("What's the weather in Oslo?"))
        first = await _respond(conn)
        (call,) = _calls(first)
        _assert_valid_call(call)

        result = {"temperature_c": 4, "conditions": "snow"}
        output = {"type": "function_call_output", "call_id": call["call_id"], "output": json.dumps(result)}
        await conn.send({"type": "conversation.item.create", "item": output})
        added = await conn.until("conversation.item.added" if dialect == "ga" else "conversation.item.created")
        assert added["previous_item_id"] == call["id"] and added["item"]["call_id"] == call["call_id"]

        # The follow-up may not call again, so it answers in words, with the call and its result in context.
        limit = "max_output_tokens" if dialect == "ga" else "max_response_output_tokens"
        follow_up = await _respond(conn, {"tool_choice": "none", limit: 60})
        assert follow_up["status"] in {"completed", "incomplete"}
        assert [item["type"] for item in follow_up["output"]] == ["message"]
        assert response_text(conn.events, follow_up["id"]).strip()
        conn.assert_conformant()


async def test_per_response_tools_leave_the_session_alone(server: RunningServer) -> None:
    async with connect(server, "ga") as conn:
        await conn.send(user_text("Book a table for four at Luigi's at half past seven."))
        response = await _respond(conn, {"tools": [WEATHER, BOOKING], "tool_choice": "required"})
        assert response["status"] == "completed", response
        calls = _calls(response)
        assert calls and [item["type"] for item in response["output"]] == ["function_call"] * len(calls)
        for call in calls:
            _assert_valid_call(call)
        # Several calls, when the model makes them, each have their own item, index and call_id.
        indexes = [e["output_index"] for e in conn.of_type("response.output_item.added")]
        assert indexes == list(range(len(calls)))
        assert len({call["call_id"] for call in calls}) == len(calls)

        # The session never had tools: the next response answers in words.
        await conn.send(user_text("Thanks! Say goodbye."))
        plain = await _respond(conn, {"max_output_tokens": 30})
        assert [item["type"] for item in plain["output"]] == ["message"]
        conn.assert_conformant()


async def test_tool_choice_none_answers_in_words(server: RunningServer) -> None:
    async with connect(server, "beta") as conn:
        await conn.send(_session("beta", tools=[WEATHER], tool_choice="none"))
        await conn.until("session.updated")
        await conn.send(user_text("What's the weather in Rome?"))
        response = await _respond(conn, {"max_response_output_tokens": 30})
        assert [item["type"] for item in response["output"]] == ["message"]
        assert not conn.of_type("response.function_call_arguments.done")
        conn.assert_conformant()


async def test_a_spoken_session_does_not_speak_its_calls(server: RunningServer) -> None:
    async with connect(server, "ga", speak=True) as conn:
        await conn.send(user_text("What's the weather in Madrid?"))
        response = await _respond(conn, {"tools": [WEATHER], "tool_choice": "required"})
        assert response["status"] == "completed"
        assert [item["type"] for item in response["output"]] == ["function_call"]
        assert not conn.of_type("response.output_audio.delta")
        assert response["usage"]["output_token_details"]["audio_tokens"] == 0
        conn.assert_conformant()


# --- the model decides (auto) --------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_auto_calls_when_a_tool_fits_and_answers_otherwise(qwen_server: RunningServer, dialect: str) -> None:
    async with connect(qwen_server, dialect) as conn:
        await conn.send(_session(dialect, tools=[WEATHER, BOOKING], tool_choice="auto"))
        await conn.until("session.updated")
        await conn.send(user_text("What is the weather in Paris right now?"))
        response = await _respond(conn)
        assert response["status"] == "completed", response
        assert [item["type"] for item in response["output"]] == ["function_call"], response["output"]
        (call,) = _calls(response)
        assert call["name"] == "get_weather"
        assert "paris" in _assert_valid_call(call)["city"].lower()

        output = {"type": "function_call_output", "call_id": call["call_id"], "output": '{"temperature_c": 23}'}
        await conn.send({"type": "conversation.item.create", "item": output})
        answer = await _respond(conn)
        assert [item["type"] for item in answer["output"]] == ["message"], answer
        assert "23" in response_text(conn.events, answer["id"])
        conn.assert_conformant()


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([{**WEATHER, "parameters": {"type": "object", "properties": {"city": {"type": "strng"}}}}],
         "session.tools[0].parameters"),
        ([{**WEATHER, "parameters": {"type": "string"}}], "session.tools[0].parameters"),
        ([WEATHER, {**BOOKING, "name": "get weather now"}], "session.tools[1].name"),
        ([WEATHER, WEATHER], "session.tools"),
    ],
)  # fmt: skip
async def test_invalid_tools_are_refused_and_the_session_kept(
    server: RunningServer, tools: list[dict[str, Any]], param: str
) -> None:
    async with connect(server, "ga") as conn:
        await conn.send({**_session("ga", tools=[BOOKING]), "event_id": "evt_good"})
        await conn.until("session.updated")
        await conn.send({**_session("ga", tools=tools, instructions="Changed."), "event_id": "evt_bad"})
        error = await conn.expect_error("evt_bad")
        assert error["param"] == param, error
        assert error["code"] == "invalid_value"
        # Nothing of the refused update was applied.
        await conn.send(_session("ga"))
        session = (await conn.until("session.updated"))["session"]
        assert [tool["name"] for tool in session["tools"]] == ["book_table"]
        assert session["instructions"] != "Changed."
        conn.assert_conformant()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_tool_choice_naming_no_tool_is_refused(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as conn:
        await conn.send(
            {**_session(dialect, tools=[WEATHER], tool_choice=_named(dialect, "get_wether")), "event_id": "e1"}
        )
        error = await conn.expect_error("e1")
        assert error["param"] == "session.tool_choice" and "get_wether" in error["message"], error
        await conn.send(user_text("Hi"))
        await conn.send(
            {"type": "response.create", "event_id": "e2", "response": {"tool_choice": _named(dialect, "nope")}}
        )
        error = await conn.expect_error("e2")
        assert error["param"] == "response.tool_choice", error
        assert not conn.of_type("response.created")
        # The conversation goes on.
        limit = "max_output_tokens" if dialect == "ga" else "max_response_output_tokens"
        response = await _respond(conn, {limit: 20})
        assert response["status"] in {"completed", "incomplete"}
        conn.assert_conformant()


async def test_output_for_an_unknown_call_is_refused(server: RunningServer) -> None:
    async with connect(server, "ga") as conn:
        output = {"type": "function_call_output", "call_id": "call_never_made", "output": "{}"}
        await conn.send({"type": "conversation.item.create", "event_id": "evt_out", "item": output})
        error = await conn.expect_error("evt_out")
        assert error["param"] == "item.call_id" and "call_never_made" in error["message"], error
        await conn.send(user_text("Hello"))
        response = await _respond(conn, {"max_output_tokens": 20})
        assert response["status"] in {"completed", "incomplete"}
        conn.assert_conformant()


# --- structured output ---------------------------------------------------------------------------------

INTAKE_RECORD = {
    "type": "object",
    "properties": {
        "full_name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "symptoms": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "urgency": {"type": "string", "enum": ["low", "medium", "high"]},
        "callback_number": {"type": ["string", "null"]},
    },
    "required": ["full_name", "age", "symptoms", "urgency", "callback_number"],
    "additionalProperties": False,
}
INTERVIEW = [
    ("assistant", "Hello, this is the clinic's intake line. May I have your full name?"),
    ("user", "Yes, it's Maria Lopez."),
    ("assistant", "Thank you, Maria. How old are you?"),
    ("user", "I'm 42."),
    ("assistant", "What symptoms are you having?"),
    ("user", "A sore throat and a fever since yesterday."),
    ("assistant", "Is there a number we can call you back on?"),
    ("user", "Sure, 555 0142."),
]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_interview_ends_in_a_record_valid_against_its_schema(server: RunningServer, dialect: str) -> None:
    """Structured output the OpenAI-compatible way: a tool whose parameters are the record's schema, forced."""
    save = {"type": "function", "name": "save_intake", "description": "Save the intake record.",
            "parameters": INTAKE_RECORD}  # fmt: skip
    async with connect(server, dialect) as conn:
        instructions = "You are a clinic intake assistant. Collect the caller's details, then save them."
        await conn.send(_session(dialect, instructions=instructions, tools=[save]))
        await conn.until("session.updated")
        for role, text in INTERVIEW:
            kind = "input_text" if role == "user" else ("output_text" if dialect == "ga" else "text")
            item = {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
            await conn.send({"type": "conversation.item.create", "item": item})
        response = await _respond(conn, {"tool_choice": _named(dialect, "save_intake")})
        assert response["status"] == "completed", response
        (call,) = _calls(response)
        assert call["name"] == "save_intake"
        record = json.loads(call["arguments"])
        jsonschema.validate(record, INTAKE_RECORD)
        conn.assert_conformant()
