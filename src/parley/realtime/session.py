"""One Realtime session: its configuration, conversation, input buffer, responses and outgoing events.

Handlers run one client event at a time, in order; responses run as tasks owned by the session, and every
task ends when the session closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from ..engines.llm import LanguageModel
from ..ids import new_id
from .conversation import Conversation
from .dialect import Dialect
from .errors import RealtimeError
from .input_audio import InputAudioBuffer
from .items import Item
from .response import Response
from .session_config import SessionConfig

log = logging.getLogger(__name__)

_CLOSE = object()


class RealtimeSession:
    def __init__(self, dialect: Dialect, config: SessionConfig, llm: LanguageModel) -> None:
        self.dialect = dialect
        self.config = config
        self.llm = llm
        self.conversation = Conversation()
        self.input_audio = InputAudioBuffer()
        self.active_response: Response | None = None
        self.out_of_band: set[Response] = set()
        self._outbox: asyncio.Queue[object] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def id(self) -> str:
        return self.config.id

    # Outgoing events -------------------------------------------------------------------------------------

    def emit(self, type: str, **fields: Any) -> None:
        """Queue a server event (internal GA name; renamed for beta); events leave in the order queued."""
        self._outbox.put_nowait({"type": self.dialect.event_name(type), "event_id": new_id("event"), **fields})

    def item_added(self, item: Item, previous_item_id: str | None) -> None:
        wire = item.render(self.dialect)
        if self.dialect is Dialect.GA:
            self.emit("conversation.item.added", previous_item_id=previous_item_id, item=wire)
        else:
            self.emit("conversation.item.created", previous_item_id=previous_item_id, item=wire)

    def item_done(self, item: Item, previous_item_id: str | None) -> None:
        if self.dialect is Dialect.GA:
            self.emit("conversation.item.done", previous_item_id=previous_item_id, item=item.render(self.dialect))

    def add_item(self, item: Item, previous_item_id: str | None = None) -> None:
        """Insert a finished item and announce it (GA: added + done; beta: created)."""
        previous = self.conversation.insert(item, previous_item_id)
        self.item_added(item, previous)
        self.item_done(item, previous)

    def error(self, exc: RealtimeError, client_event_id: str | None) -> None:
        self.emit("error", error=exc.payload(client_event_id))

    def announce(self) -> None:
        self.emit("session.created", session=self.config.render(self.dialect))

    async def write_loop(self, send_text: Any) -> None:
        """Send queued events until the session closes; the only writer on the socket."""
        while (event := await self._outbox.get()) is not _CLOSE:
            await send_text(json.dumps(event, ensure_ascii=False))

    def finish_writing(self) -> None:
        """Let the writer flush what is queued, then stop."""
        self._outbox.put_nowait(_CLOSE)

    # Responses -------------------------------------------------------------------------------------------

    def start_response(self, response: Response) -> None:
        if response.in_conversation:
            self.active_response = response
        else:
            self.out_of_band.add(response)
        task = response.start()
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._response_finished(response, done))

    def _response_finished(self, response: Response, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.out_of_band.discard(response)
        if self.active_response is response:
            self.active_response = None

    async def close(self) -> None:
        """Cancel everything the session started; nothing outlives it."""
        responses = [r for r in (self.active_response, *self.out_of_band) if r is not None]
        for response in responses:
            await response.cancel("client_cancelled")
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.finish_writing()
