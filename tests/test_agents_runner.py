"""openai-agents' realtime runner (GA, strict) holds a text conversation with a running Parley server.

The runner validates every server event with a pydantic ``TypeAdapter`` over the SDK's
``RealtimeServerEvent`` union; a failure becomes an ``error`` session event (the server event is
dropped), so any error here means Parley sent something non-conformant.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from agents.realtime import (
    AssistantMessageItem,
    AssistantText,
    OpenAIRealtimeWebSocketModel,
    RealtimeAgent,
    RealtimeRunConfig,
    RealtimeRunner,
    RealtimeSession,
)
from agents.realtime.items import AssistantAudio

from tests.conformance.validator import assert_conformant
from tests.support.server import RunningServer

TURN_TIMEOUT_S = 60.0
ANSWER_CAP = 200  # tokens: about 7 s of the small model's writing


class RecordingModel(OpenAIRealtimeWebSocketModel):
    """The runner's own WebSocket model, keeping a copy of every client event it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []

    async def _create_websocket_connection(self, *args: Any, **kwargs: Any) -> Any:
        websocket = await super()._create_websocket_connection(*args, **kwargs)
        send = websocket.send

        async def recording_send(message: Any, *more: Any, **options: Any) -> None:
            self.sent.append(json.loads(message))
            await send(message, *more, **options)

        websocket.send = recording_send
        return websocket


@dataclass
class Turn:
    """What the runner surfaced for one user message, up to the end of the agent's answer."""

    session_events: list[Any] = field(default_factory=list)
    history: list[Any] = field(default_factory=list)
    text_deltas: list[str] = field(default_factory=list)
    audio_bytes: int = 0

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.session_events]

    def problems(self) -> list[str]:
        """Error events, in words: the runner's strict validation failures and server ``error`` events."""
        found = []
        for event in self.session_events:
            if event.type == "error":
                found.append(f"session error event: {event.error!r}")
            elif event.type == "raw_model_event" and event.data.type in ("error", "exception"):
                found.append(f"model {event.data.type} event: {event.data!r}")
        return found

    def assistant_text(self) -> str:
        """The answer as the runner's history holds it: text, or the transcript of spoken audio."""
        messages = [item for item in self.history if isinstance(item, AssistantMessageItem)]
        assert messages, f"no assistant message in the runner's history: {self.history}"
        parts = messages[-1].content
        return "".join(
            (part.text or "") if isinstance(part, AssistantText) else (part.transcript or "")
            for part in parts
            if isinstance(part, AssistantText | AssistantAudio)
        )


class Conversation:
    """One runner session against Parley, recording the raw server events the runner received."""

    def __init__(self, session: RealtimeSession, model: RecordingModel) -> None:
        self.session = session
        self.model = model
        self.raw_server_events: list[dict[str, Any]] = []
        self._events = aiter(session)

    async def say(self, text: str) -> Turn:
        """Send a user message and read session events until the agent's turn ends (``agent_end``)."""
        await self.session.send_message(text)
        turn = Turn()
        async with asyncio.timeout(TURN_TIMEOUT_S):
            while True:
                event = await anext(self._events)
                turn.session_events.append(event)
                if event.type == "raw_model_event":
                    model_event = event.data
                    if model_event.type == "raw_server_event":
                        self.raw_server_events.append(model_event.data)
                    elif model_event.type in ("output_text_delta", "transcript_delta"):
                        turn.text_deltas.append(model_event.delta)
                elif event.type == "audio":
                    turn.audio_bytes += len(event.audio.data)
                elif event.type == "history_updated":
                    turn.history = list(event.history)
                elif event.type == "agent_end":
                    return turn

    async def settle(self) -> None:
        """Drain what is still in flight (the runner's late ``tracing`` update) so the record is whole."""
        async with asyncio.timeout(TURN_TIMEOUT_S):
            while len([e for e in self.raw_server_events if e["type"] == "session.updated"]) < len(
                [e for e in self.model.sent if e["type"] == "session.update"]
            ):
                event = await anext(self._events)
                if event.type == "raw_model_event" and event.data.type == "raw_server_event":
                    self.raw_server_events.append(event.data.data)


def runner_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the agents SDK logged at error level ("Failed to validate server event: ..." and the like)."""
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def model_config(server: RunningServer) -> dict[str, Any]:
    return {"url": f"{server.ws_url}?model=gpt-realtime", "api_key": "unused"}


def of_type(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == event_type]


async def test_runner_default_session_spoken_exchange(server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    """The runner's default session (audio out, semantic_vad) gets spoken answers over two turns."""
    caplog.set_level(logging.ERROR, logger="openai.agents")
    model = RecordingModel()
    agent = RealtimeAgent(name="assistant", instructions="You are a helpful assistant. Answer briefly.")
    # The 135M model now and then loops until its context is full (one answer in 40 ran to 4064 tokens when
    # measured): answers are capped so a turn ends in time. All else is the runner's default session.
    config: RealtimeRunConfig = {"model_settings": {"max_output_tokens": ANSWER_CAP}}
    runner = RealtimeRunner(agent, model=model, config=config)
    async with asyncio.timeout(3 * TURN_TIMEOUT_S), await runner.run(model_config=model_config(server)) as session:
        conversation = Conversation(session, model)
        first = await conversation.say("Hello! What is the capital of France?")
        second = await conversation.say("Thank you. And of Italy?")
        await conversation.settle()

    assert not runner_errors(caplog), runner_errors(caplog)
    for turn in (first, second):
        assert not turn.problems(), "\n".join(turn.problems())
        assert "agent_start" in turn.types and "agent_end" in turn.types, turn.types
        text = turn.assistant_text()
        assert text.strip(), f"empty assistant answer; events: {turn.types}"
        assert text == "".join(turn.text_deltas)
        assert turn.audio_bytes > 0.3 * 48_000, "less than 0.3 s of speech reached the runner"

    # The runner's history holds both exchanges in order.
    roles = [getattr(item, "role", None) for item in second.history]
    assert roles == ["user", "assistant", "user", "assistant"], second.history

    events = conversation.raw_server_events
    assert_conformant(events, "ga", model.sent)

    # What the runner asked for, and what Parley made of it.
    update = model.sent[0]
    assert update["type"] == "session.update"
    requested = update["session"]
    assert requested["model"] == "gpt-realtime-2.1"
    assert requested["output_modalities"] == ["audio"]
    assert requested["max_output_tokens"] == ANSWER_CAP
    assert requested["audio"]["input"]["turn_detection"] == {"type": "semantic_vad", "interrupt_response": True}
    tracing_updates = [e for e in model.sent if e["type"] == "session.update" and "tracing" in e["session"]]
    assert [e["session"] for e in tracing_updates] == [
        {"type": "realtime", "model": "gpt-realtime-2.1", "tracing": "auto"}
    ]

    updated = of_type(events, "session.updated")
    assert len(updated) == 2
    echoed = updated[0]["session"]
    assert echoed["model"] == "gpt-realtime-2.1"
    assert echoed["instructions"] == agent.instructions
    assert echoed["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
    assert echoed["audio"]["output"]["voice"] == "ash"
    assert updated[1]["session"]["tracing"] == "auto"

    done = of_type(events, "response.done")
    assert len(done) == 2
    for event in done:
        response = event["response"]
        assert response["status"] == "completed" or response["status_details"]["reason"] == "max_output_tokens"
        assert response["output_modalities"] == ["audio"]
        assert response["usage"]["output_token_details"]["audio_tokens"] > 0


async def test_runner_text_output_session(server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    """Asking for text output explicitly (``output_modalities: ["text"]``) works the same way."""
    caplog.set_level(logging.ERROR, logger="openai.agents")
    model = RecordingModel()
    agent = RealtimeAgent(name="assistant", instructions="Answer in one short sentence.")
    config: RealtimeRunConfig = {"model_settings": {"output_modalities": ["text"], "max_output_tokens": ANSWER_CAP}}
    runner = RealtimeRunner(agent, model=model, config=config)
    async with asyncio.timeout(2 * TURN_TIMEOUT_S), await runner.run(model_config=model_config(server)) as session:
        conversation = Conversation(session, model)
        turn = await conversation.say("Name a colour.")
        await conversation.settle()

    assert not runner_errors(caplog), runner_errors(caplog)
    assert not turn.problems(), "\n".join(turn.problems())
    assert turn.assistant_text().strip()
    assert model.sent[0]["session"]["output_modalities"] == ["text"]
    events = conversation.raw_server_events
    assert_conformant(events, "ga", model.sent)
    assert of_type(events, "session.updated")[0]["session"]["output_modalities"] == ["text"]
    (done,) = of_type(events, "response.done")
    assert done["response"]["status"] == "completed"
    assert done["response"]["output_modalities"] == ["text"]
