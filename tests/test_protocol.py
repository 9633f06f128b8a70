"""Protocol conformance with the official openai SDK clients (GA and beta) against a real server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.client import RecordingConnection, connect, response_text, sdk_client, user_text
from tests.support.server import RunningServer

DIALECTS = ["ga", "beta"]


def _text_only(dialect: str) -> dict[str, Any]:
    if dialect == "ga":
        return {"type": "realtime", "output_modalities": ["text"]}
    return {"modalities": ["text"]}


def _limit(dialect: str, tokens: int) -> dict[str, Any]:
    """Keep answers short: the tiny test model can ramble until its context is full."""
    return {"max_output_tokens" if dialect == "ga" else "max_response_output_tokens": tokens}


async def _ask(conn: RecordingConnection, text: str, response: dict[str, Any] | None = None) -> dict[str, Any]:
    await conn.send(user_text(text))
    await conn.send({"type": "response.create", **({"response": response} if response else {})})
    return (await conn.until("response.done"))["response"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_session_created_carries_the_full_effective_session(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect, speak=True) as conn:
        session = conn.events[0]["session"]
        assert session["id"].startswith("sess_")
        assert abs(session["expires_at"] - (time.time() + 3600)) < 60
        assert session["instructions"]
        if dialect == "ga":
            assert session["model"] == "gpt-realtime"
            assert session["output_modalities"] == ["audio"]
            detection = session["audio"]["input"]["turn_detection"]
        else:
            assert session["model"] == "gpt-4o-mini-realtime-preview"
            assert session["modalities"] == ["audio", "text"]
            detection = session["turn_detection"]
        # openai-agents decides whether to send its own cancels from these explicit echoes.
        assert detection["interrupt_response"] is True and detection["create_response"] is True
        conn.assert_conformant()


async def test_ga_session_update_echoes_fields_it_does_not_act_on(server: RunningServer) -> None:
    async with connect(server, "ga") as conn:
        update = {
            "type": "realtime",
            "model": "gpt-realtime-2.1",
            "instructions": "Be brief.",
            "output_modalities": ["text"],
            "tracing": "auto",
            "reasoning": {"effort": "low"},
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {"model": "gpt-4o-mini-transcribe", "language": "fr"},
                    "noise_reduction": {"type": "near_field"},
                    "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
                },
                "output": {"voice": "ash", "speed": 1.2},
            },
            "tools": [{"type": "function", "name": "lookup", "description": "Look up", "parameters": {}}],
            "tool_choice": {"type": "function", "name": "lookup"},
            "max_output_tokens": 300,
        }
        await conn.send({"type": "session.update", "event_id": "evt_update_1", "session": update})
        session = (await conn.until("session.updated"))["session"]
        assert session["model"] == "gpt-realtime-2.1"
        assert session["instructions"] == "Be brief."
        assert session["output_modalities"] == ["text"]
        assert session["tracing"] == "auto"
        assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert session["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe", "language": "fr"}
        assert session["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
        assert session["audio"]["input"]["turn_detection"] == {
            "type": "semantic_vad",
            "eagerness": "high",
            "create_response": True,
            "interrupt_response": True,
        }
        assert session["audio"]["output"] == {
            "format": {"type": "audio/pcm", "rate": 24000},
            "voice": "ash",
            "speed": 1.2,
        }
        assert session["tools"][0]["name"] == "lookup"
        assert session["tool_choice"] == {"type": "function", "name": "lookup"}
        assert session["max_output_tokens"] == 300

        # A partial update changes only what it names; turn detection null means push-to-talk.
        await conn.send(
            {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}}
        )
        session = (await conn.until("session.updated"))["session"]
        assert session["audio"]["input"]["turn_detection"] is None
        assert session["instructions"] == "Be brief."
        conn.assert_conformant()


async def test_beta_session_update_uses_the_flat_shape(server: RunningServer) -> None:
    async with connect(server, "beta") as conn:
        update = {
            "modalities": ["text"],
            "voice": "verse",
            "temperature": 0.7,
            "input_audio_format": "g711_ulaw",
            "output_audio_format": "g711_alaw",
            "input_audio_transcription": {"model": "whisper-1"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
            "max_response_output_tokens": 200,
            "tool_choice": "none",
        }
        await conn.send({"type": "session.update", "session": update})
        session = (await conn.until("session.updated"))["session"]
        for key in ("modalities", "voice", "temperature", "input_audio_format", "output_audio_format"):
            assert session[key] == update[key]
        assert session["max_response_output_tokens"] == 200
        assert session["input_audio_transcription"] == {"model": "whisper-1"}
        assert session["turn_detection"] == {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 400,
            "create_response": True,
            "interrupt_response": True,
        }
        conn.assert_conformant()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_text_turns_stream_and_reuse_the_prompt_cache(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as conn:
        await conn.send({"type": "session.update", "session": _text_only(dialect)})
        first = await _ask(conn, "What is the capital of France?", _limit(dialect, 40))
        assert first["status"] in {"completed", "incomplete"}
        text = response_text(conn.events, first["id"])
        assert text.strip()
        assert first["output"][0]["content"][0]["text"] == text
        usage = first["usage"]
        assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]

        second = await _ask(conn, "And of Spain?", _limit(dialect, 40))
        cached = second["usage"]["input_token_details"]["cached_tokens"]
        # The whole first turn is still in the KV cache: most of the new prompt is reused.
        assert cached >= usage["input_tokens"], second["usage"]
        assert cached < second["usage"]["input_tokens"]
        conn.assert_conformant()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_text_response_event_order(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as conn:
        await conn.send({"type": "session.update", "session": _text_only(dialect)})
        await conn.until("session.updated")
        start = len(conn.events)
        await _ask(conn, "Say hi.", _limit(dialect, 40))
        names = [e["type"] for e in conn.events[start:]]
        text = "response.output_text" if dialect == "ga" else "response.text"
        deltas = [n for n in names if n == f"{text}.delta"]
        assert deltas, names
        collapsed = [n for i, n in enumerate(names) if n != f"{text}.delta" or names[i - 1] != n]
        if dialect == "ga":
            expected = [
                "conversation.item.added", "conversation.item.done", "response.created",
                "response.output_item.added", "conversation.item.added", "response.content_part.added",
                f"{text}.delta", f"{text}.done", "response.content_part.done", "conversation.item.done",
                "response.output_item.done", "response.done",
            ]  # fmt: skip
        else:
            expected = [
                "conversation.item.created", "response.created", "response.output_item.added",
                "conversation.item.created", "response.content_part.added", f"{text}.delta", f"{text}.done",
                "response.content_part.done", "response.output_item.done", "response.done",
            ]  # fmt: skip
        assert collapsed == expected
        conn.assert_conformant()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_text_question_gets_a_spoken_answer(server: RunningServer, dialect: str) -> None:
    """The default session speaks: audio deltas and their transcript, in each dialect's names."""
    async with connect(server, dialect, speak=True) as conn:
        response = await _ask(conn, "Hello!", _limit(dialect, 40))
        assert response["status"] in {"completed", "incomplete"}
        key = "output_modalities" if dialect == "ga" else "modalities"
        assert response[key] == (["audio"] if dialect == "ga" else ["audio", "text"])
        audio_delta = "response.output_audio.delta" if dialect == "ga" else "response.audio.delta"
        transcript_delta = (
            "response.output_audio_transcript.delta" if dialect == "ga" else "response.audio_transcript.delta"
        )
        assert conn.of_type(audio_delta) and conn.of_type(transcript_delta)
        part = response["output"][0]["content"][0]
        assert part["type"] == ("output_audio" if dialect == "ga" else "audio")
        assert part["transcript"] == "".join(e["delta"] for e in conn.of_type(transcript_delta))
        conn.assert_conformant()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_per_response_overrides(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as conn:
        limit_key = "max_output_tokens" if dialect == "ga" else "max_response_output_tokens"
        overrides: dict[str, Any] = {
            "instructions": "You are a pirate.",
            limit_key: 3,
            "metadata": {"purpose": "limit-test"},
        }
        if dialect == "beta":
            overrides["temperature"] = 0.6
        response = await _ask(conn, "Tell me a long story about the sea.", overrides)
        assert response["status"] == "incomplete"
        assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
        assert response["usage"]["output_tokens"] == 3
        assert response["metadata"] == {"purpose": "limit-test"}
        assert response["max_output_tokens"] == 3
        assert response["output"][0]["status"] == "incomplete"
        if dialect == "beta":
            assert response["temperature"] == 0.6
        conn.assert_conformant()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_out_of_band_response_stays_out_of_the_conversation(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as conn:
        await conn.send(user_text("My name is Ada.", item_id="item_name"))
        await conn.until("conversation.item.done" if dialect == "ga" else "conversation.item.created")
        start = len(conn.events)
        await conn.send(
            {
                "type": "response.create",
                "response": {
                    **_limit(dialect, 40),
                    "conversation": "none",
                    "metadata": {"topic": "classification"},
                    "instructions": "Answer yes or no.",
                    "input": [
                        {"type": "item_reference", "id": "item_name"},
                        {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": "Is it a name?"}],
                        },
                    ],
                },
            }
        )
        done = (await conn.until("response.done"))["response"]
        assert done["conversation_id"] is None
        assert done["metadata"] == {"topic": "classification"}
        assert done["status"] in {"completed", "incomplete"}
        assert not [e for e in conn.events[start:] if e["type"].startswith("conversation.item")]
        # Its output item never entered the conversation.
        await conn.send({"type": "conversation.item.retrieve", "event_id": "evt_r", "item_id": done["output"][0]["id"]})
        error = await conn.expect_error("evt_r")
        assert error["code"] == "item_not_found"
        conn.assert_conformant()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_response_cancel_stops_generation_at_once(server: RunningServer, dialect: str) -> None:
    async with connect(server, dialect) as conn:
        await conn.send(user_text("Write a very long story about a dragon, at least 500 words."))
        await conn.send({"type": "response.create"})
        delta = "response.output_text.delta" if dialect == "ga" else "response.text.delta"
        created = await conn.until("response.created")
        await conn.until(delta)
        await conn.send({"type": "response.cancel", "response_id": created["response"]["id"]})
        done = (await conn.until("response.done", timeout=10))["response"]
        assert done["status"] == "cancelled"
        assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
        assert done["output"][0]["status"] == "incomplete"
        assert done["usage"]["output_tokens"] >= 1
        # Nothing more for that response after its response.done.
        await conn.no_event_within(1.0)
        # The conversation goes on: a new response is accepted at once.
        follow_up = await _ask(conn, "Now just say OK.", _limit(dialect, 40))
        assert follow_up["status"] in {"completed", "incomplete"}
        conn.assert_conformant()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_conversation_items_create_retrieve_delete(server: RunningServer, dialect: str) -> None:
    added = "conversation.item.added" if dialect == "ga" else "conversation.item.created"
    async with connect(server, dialect) as conn:
        await conn.send(user_text("first", item_id="item_first"))
        assert (await conn.until(added))["previous_item_id"] is None
        await conn.send({**user_text("zeroth", item_id="item_zeroth"), "previous_item_id": "root"})
        assert (await conn.until(added))["previous_item_id"] is None
        await conn.send({**user_text("between", item_id="item_between"), "previous_item_id": "item_zeroth"})
        assert (await conn.until(added))["previous_item_id"] == "item_zeroth"
        system = {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be terse."}]}
        await conn.send({"type": "conversation.item.create", "item": system})
        event = await conn.until(added)
        assert event["previous_item_id"] == "item_first" and event["item"]["role"] == "system"

        call = {"type": "function_call", "id": "item_call", "call_id": "call_42", "name": "get_weather",
                "arguments": '{"city": "Paris"}'}  # fmt: skip
        await conn.send({"type": "conversation.item.create", "item": call})
        assert (await conn.until(added))["item"]["call_id"] == "call_42"
        output = {"type": "function_call_output", "call_id": "call_42", "output": '{"temp_c": 18}'}
        await conn.send({"type": "conversation.item.create", "item": output})
        assert (await conn.until(added))["item"]["output"] == '{"temp_c": 18}'

        await conn.send({"type": "conversation.item.retrieve", "item_id": "item_between"})
        retrieved = (await conn.until("conversation.item.retrieved"))["item"]
        assert retrieved["content"][0]["text"] == "between"

        await conn.send({"type": "conversation.item.delete", "item_id": "item_between"})
        assert (await conn.until("conversation.item.deleted"))["item_id"] == "item_between"

        # The model sees the conversation as edited, tool result included.
        response = await _ask(conn, "What did the weather tool say?", _limit(dialect, 40))
        assert response["status"] in {"completed", "incomplete"}
        conn.assert_conformant()


async def test_sdk_resource_helpers_drive_a_turn(server: RunningServer) -> None:
    """The SDK's typed helpers (not raw dicts) produce events the server accepts."""
    client = sdk_client(server)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        conn = RecordingConnection(connection, "ga")
        await conn.next()
        await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.until("session.updated")
        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi!"}]}
        )
        await connection.response.create(response={"max_output_tokens": 20})
        done = (await conn.until("response.done"))["response"]
        assert done["status"] in {"completed", "incomplete"}
        assert response_text(conn.events, done["id"])
    await client.close()
