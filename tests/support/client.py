"""A Realtime client on the official ``openai`` SDK that records every event for strict validation."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from openai import AsyncOpenAI

from tests.conformance.validator import DEFAULT_ALLOWED_EXTRAS, Dialect, EventValidator, assert_conformant

from .server import RunningServer

# Parley's extension events, sent only to clients that opt in, with the fields each must carry.
EXTENSION_EVENTS = {
    "parley.turn.timings": {"event_id", "response_id", "item_id", "audio_end_ms", "stages_ms", "speculative"},
}


class RecordingConnection:
    """Sends through the SDK connection and keeps every raw server event in arrival order.

    Every event is validated strictly against the SDK's types, except the extension events this connection
    opted into (``extensions``), which must carry exactly their documented fields, and the extension keys it
    asked for (``extra_allowed``).
    """

    def __init__(
        self,
        connection: Any,
        dialect: Dialect,
        extensions: frozenset[str] = frozenset(),
        extra_allowed: tuple[str, ...] = (),
    ) -> None:
        self.connection = connection
        self.dialect = dialect
        self.extensions = extensions
        self.events: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.extra_allowed = extra_allowed  # extension keys this client asked for (session.knowledge)
        self._validator = EventValidator(dialect, (*DEFAULT_ALLOWED_EXTRAS, *extra_allowed))

    def allow_extras(self, *keys: str) -> None:
        """From now on accept these extension keys (the client starts using a Parley extension)."""
        self.extra_allowed = (*self.extra_allowed, *keys)
        self._validator = EventValidator(self.dialect, (*DEFAULT_ALLOWED_EXTRAS, *self.extra_allowed))

    async def send(self, event: dict[str, Any]) -> None:
        self.sent.append(event)
        await self.connection.send(event)

    async def send_raw(self, text: str) -> None:
        """A frame the SDK would never produce (bad JSON and the like)."""
        await self.connection._connection.send(text)

    async def next(self, timeout: float = 60.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv_bytes(), timeout)
        event = json.loads(raw)
        self.events.append(event)
        if event.get("type") in self.extensions:
            assert set(event) == {"type"} | EXTENSION_EVENTS[event["type"]], event
            return event
        problems = self._validator.validate_event(event)
        assert not problems, f"{event.get('type')}: {problems}"
        return event

    async def until(self, event_type: str, timeout: float = 120.0) -> dict[str, Any]:
        """Read events until one of ``event_type`` arrives; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.next(max(0.1, deadline - loop.time()))
            if event["type"] == event_type:
                return event

    async def expect_error(self, client_event_id: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        event = await self.until("error", timeout)
        assert event["error"]["event_id"] == client_event_id, event
        return event["error"]

    async def no_event_within(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            event = await self.next(seconds)
            raise AssertionError(f"unexpected event {event}")

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == event_type]

    def assert_conformant(self, allow_open_responses: bool = False) -> None:
        standard = [event for event in self.events if event["type"] not in self.extensions]
        assert_conformant(
            standard,
            self.dialect,
            self.sent,
            allow_open_responses=allow_open_responses,
            extra_allowed=self.extra_allowed,
        )


def sdk_client(server: RunningServer, api_key: str = "unused") -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=api_key,
        base_url=f"{server.http_url}/v1",
        websocket_base_url=f"ws://127.0.0.1:{server.port}/v1",
    )


@contextlib.asynccontextmanager
async def connect(
    server: RunningServer,
    dialect: Dialect = "ga",
    model: str | None = None,
    api_key: str = "unused",
    speak: bool = False,
    timings: bool = False,
    knowledge: str | None = None,
) -> AsyncIterator[RecordingConnection]:
    """Connect with ``client.realtime.connect`` (GA) or ``client.beta.realtime.connect`` (beta).

    Sessions answer in text unless ``speak``: most protocol tests are about events, not voices, and text
    keeps them quick. With ``speak`` the session keeps the server's defaults (spoken answers). ``timings``
    opts into ``parley.turn.timings`` events through the URL, as any client can. ``knowledge`` picks a
    knowledge base at connect (``?knowledge=``, "" for none), as any SDK client can with ``extra_query``.
    """
    client = sdk_client(server, api_key)
    extra_query: dict[str, str] = {}
    if timings:
        extra_query["parley_timings"] = "true"
    if knowledge is not None:
        extra_query["knowledge"] = knowledge
    if dialect == "ga":
        manager = client.realtime.connect(model=model or "gpt-realtime", extra_query=extra_query)
    else:
        manager = client.beta.realtime.connect(model=model or "gpt-4o-mini-realtime-preview", extra_query=extra_query)
    extensions = frozenset({"parley.turn.timings"}) if timings else frozenset()
    extra_allowed = ("session.knowledge",) if knowledge is not None else ()
    async with manager as connection:
        recorder = RecordingConnection(connection, dialect, extensions, extra_allowed)
        created = await recorder.next()
        assert created["type"] == "session.created"
        if not speak:
            text_only = (
                {"type": "realtime", "output_modalities": ["text"]} if dialect == "ga" else {"modalities": ["text"]}
            )
            await recorder.send({"type": "session.update", "session": text_only})
            await recorder.until("session.updated")
        yield recorder
    await client.close()


def user_text(text: str, item_id: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    if item_id:
        item["id"] = item_id
    return {"type": "conversation.item.create", "item": item}


def response_text(events: list[dict[str, Any]], response_id: str) -> str:
    deltas = ("response.output_text.delta", "response.text.delta")
    return "".join(e["delta"] for e in events if e["type"] in deltas and e["response_id"] == response_id)
