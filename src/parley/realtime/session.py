"""One Realtime session: its configuration, conversation, input buffer, responses and outgoing events.

Handlers run one client event at a time, in order; responses run as tasks owned by the session, and every
task ends when the session closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..engines.llm import LanguageModel
from ..ids import new_id
from ..knowledge import KnowledgeBase, KnowledgeLibrary
from ..voice.listener import CommittedAudio, Listener
from ..voice.speaker import Speaker
from ..voice.stack import VoiceStack
from .conversation import Conversation
from .dialect import Dialect
from .early_answer import EarlyAnswer
from .errors import RealtimeError
from .items import ContentPart, Item
from .response import Response
from .response_params import GAResponseCreate, ResponseParams
from .session_config import SessionConfig
from .turn_timing import EVENT_TYPE as TURN_TIMINGS_EVENT
from .turn_timing import TurnTiming

if TYPE_CHECKING:
    from ..ops.recorder import SessionRecorder

log = logging.getLogger(__name__)

_CLOSE = object()
# How long an acknowledging event waits for its database write; past it the event goes out and the write
# goes on in the background (a failing database never holds a session up).
DURABLE_WAIT_S = 2.0
# WebSocket close code of a session ended by policy (a limit), after an ``error`` event: OpenAI's pattern.
POLICY_CLOSE_CODE = 4000


class RealtimeSession:
    def __init__(
        self,
        dialect: Dialect,
        config: SessionConfig,
        llm: LanguageModel,
        voice: VoiceStack,
        library: KnowledgeLibrary | None = None,
        *,
        report_timings: bool = False,
        recorder: SessionRecorder | None = None,
    ) -> None:
        """``report_timings``: the client asked for ``parley.turn.timings`` events; ``recorder`` writes the
        session's items and usage to the database."""
        self.dialect = dialect
        self.library = library or KnowledgeLibrary([])
        self.config = config
        self.llm = llm
        self.voice = voice
        self.conversation = Conversation()
        self.listener: Listener = voice.listener(config.input_format, config.turn_detection)
        self._transcriptions: dict[str, asyncio.Task[None]] = {}
        self._turn_item_id: str | None = None
        self._early: EarlyAnswer | None = None  # prepared during the current turn's pause
        self._report_timings = report_timings
        self.frame_received_at = time.monotonic()  # when the client event being handled arrived
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_since_ms = 0
        self._closing = False
        self.report_language = False  # opt-in extension: ``language`` on transcription.completed
        self.active_response: Response | None = None
        self.out_of_band: set[Response] = set()
        self._outbox: asyncio.Queue[object] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.recorder = recorder
        self.close_code = 1000
        self.end_reason = "closed"  # why it ended, for the session's record

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def knowledge(self) -> KnowledgeBase | None:
        return self.library.get(self.config.knowledge)

    # Outgoing events -------------------------------------------------------------------------------------

    def emit(self, type: str, **fields: Any) -> None:
        """Queue a server event (internal GA name; renamed for beta); events leave in the order queued.
        ``response.done`` leaves once its usage is in the database, and is followed by ``rate_limits.updated``
        when the session's key has limits."""
        recorder = self.recorder
        if type == "response.done" and recorder is not None:
            self._hold_for(recorder.response_done(fields["response"]))
        self._outbox.put_nowait({"type": self.dialect.event_name(type), "event_id": new_id("event"), **fields})
        if type == "response.done" and recorder is not None:
            if limits := recorder.rate_limits():
                self.emit("rate_limits.updated", rate_limits=limits)
            self.enforce_limits()

    def record(self, item: Item) -> None:
        """Write the item as it now stands; the next event leaves once it is in the database."""
        if self.recorder is not None:
            self._hold_for(self.recorder.item(item))

    def _hold_for(self, written: Future[bool]) -> None:
        self._outbox.put_nowait(written)

    def enforce_limits(self) -> None:
        """End the session (``error`` ``rate_limit_exceeded``, close 4000) once its key's minutes are used up."""
        problem = self.recorder.over_limit() if self.recorder is not None else None
        if problem is not None and self.close_code != POLICY_CLOSE_CODE:
            log.info("session %s: %s", self.id, problem)
            self.error(RealtimeError(problem, code="rate_limit_exceeded"), None)
            self.end_reason = "rate_limit_exceeded"
            self.end(POLICY_CLOSE_CODE)

    def end(self, code: int) -> None:
        """Close the socket with ``code`` once what is queued has been sent."""
        self.close_code = code
        self.finish_writing()

    def item_added(self, item: Item, previous_item_id: str | None) -> None:
        wire = item.render(self.dialect)
        if self.dialect is Dialect.GA:
            self.emit("conversation.item.added", previous_item_id=previous_item_id, item=wire)
        else:
            self.emit("conversation.item.created", previous_item_id=previous_item_id, item=wire)

    def item_done(self, item: Item, previous_item_id: str | None) -> None:
        self.record(item)
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

    async def next_event(self) -> dict[str, Any] | None:
        """The next queued server event, or None once the session is done writing. A Realtime WebSocket sends
        these as JSON (``write_loop``); a phone call reads them itself (``parley.telephony.call``). An event that
        acknowledges a database write waits for it (at most DURABLE_WAIT_S)."""
        while isinstance(event := await self._outbox.get(), Future):  # a write the next event acknowledges
            await asyncio.wait({asyncio.wrap_future(event)}, timeout=DURABLE_WAIT_S)
        return None if event is _CLOSE else event  # type: ignore[return-value]

    async def write_loop(self, send_text: Any) -> None:
        """Send queued events until the session closes; the only writer on the socket."""
        while (event := await self.next_event()) is not None:
            await send_text(json.dumps(event, ensure_ascii=False))

    def finish_writing(self) -> None:
        """Let the writer flush what is queued, then stop."""
        self._outbox.put_nowait(_CLOSE)

    # Input audio and turns ---------------------------------------------------------------------------------

    def apply_config(self, config: SessionConfig) -> None:
        """Take a new configuration; a new input format or turn detection gets a fresh listener."""
        if config.knowledge is not None and config.knowledge not in self.library:
            message = self.library.unknown_message(config.knowledge)
            raise RealtimeError(message, code="invalid_value", param="session.knowledge")
        previous, self.config = self.config, config
        if (config.input_format, config.turn_detection) != (previous.input_format, previous.turn_detection):
            # Buffered bytes of the old format cannot be mixed with the new; audio time carries on.
            self.listener = self.voice.listener(config.input_format, config.turn_detection, self.listener.end_ms)
            self._turn_item_id = None
            self._drop_early_answer()

    async def listen(self, audio: bytes) -> None:
        """Appended audio: detect turns; start, stop, commit and answer them as the session's settings say."""
        result = await self.voice.listen(self.listener, audio, self.frame_received_at)
        if self.recorder is not None:
            self.recorder.input_audio_ms = self.listener.end_ms
            self.enforce_limits()
        detection = self.config.turn_detection
        for event in result.events:
            if event.kind == "speech_started":
                self._turn_item_id = new_id("item")
                self.emit(
                    "input_audio_buffer.speech_started", audio_start_ms=event.audio_ms, item_id=self._turn_item_id
                )
                if detection and detection.interrupt_response and self.active_response is not None:
                    await self.active_response.cancel("turn_detected")
            elif event.kind == "pause":
                if detection and detection.create_response and self.active_response is None:
                    self._drop_early_answer()
                    self._early = EarlyAnswer(self, self._turn_item_id or "", self.listener.turn_so_far())
            elif event.kind == "resumed":
                self._drop_early_answer()
            else:
                self._turn_ended(event.audio_ms)

    def _turn_ended(self, audio_end_ms: int) -> None:
        detected_at = time.monotonic()
        item_id = self._turn_item_id or new_id("item")
        self._turn_item_id = None
        early, self._early = self._early, None
        self.emit("input_audio_buffer.speech_stopped", audio_end_ms=audio_end_ms, item_id=item_id)
        voice_end_at = self.listener.arrival_of(audio_end_ms) or detected_at
        turn = TurnTiming(item_id, audio_end_ms, voice_end_at, turn_detected_at=detected_at)
        self.commit_audio(item_id, early, turn)
        detection = self.config.turn_detection
        if detection and detection.create_response and self.active_response is None:
            self.start_response(self.default_response(turn, early))
        elif early is not None:
            self.own(asyncio.create_task(early.drop()))

    def _drop_early_answer(self) -> None:
        if self._early is not None:
            self.own(asyncio.create_task(self._early.drop()))
            self._early = None

    def own(self, task: asyncio.Task[Any]) -> None:
        """Every task belongs to the session: it is cancelled when the session closes."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def commit_audio(
        self, item_id: str | None = None, early: EarlyAnswer | None = None, turn: TurnTiming | None = None
    ) -> Item:
        """The buffered audio becomes a user item; its transcript follows when the recognizer is done (or comes
        from ``early``, which heard the same turn up to its final pause)."""
        if early is None:
            self._drop_early_answer()  # committed by hand mid-turn: what it prepared answers other audio
        else:
            early.commit_turn()
        committed = self.listener.commit()
        part = ContentPart(type="input_audio", audio=committed.raw, audio_format=self.listener.format)
        item = Item(id=item_id or new_id("item"), type="message", role="user", content=[part])
        self.emit("input_audio_buffer.committed", previous_item_id=self.conversation.last_item_id, item_id=item.id)
        self.add_item(item)
        task = asyncio.create_task(self._transcribe(item, committed, early, turn), name=f"transcribe-{item.id}")
        self._transcriptions[item.id] = task
        self.own(task)
        return item

    def clear_audio(self) -> None:
        self._drop_early_answer()
        self.listener.clear()

    async def _transcribe(
        self, item: Item, committed: CommittedAudio, early: EarlyAnswer | None, turn: TurnTiming | None
    ) -> None:
        settings = self.config.transcription
        part = item.content[0]
        try:
            if early is not None:
                transcript = await early.transcript
            else:
                transcript = await self.voice.transcribe(
                    committed.listen, settings.language if settings else None, settings.prompt if settings else None
                )
        except Exception as exc:  # the turn stays, without text; the client hears why if it asked
            log.exception("session %s: transcription failed", self.id)
            if settings is not None:
                error = {"type": "server_error", "code": "transcription_failed", "message": str(exc)}
                self.emit(
                    "conversation.item.input_audio_transcription.failed", item_id=item.id, content_index=0, error=error
                )
            part.transcript = ""
            self.record(item)
            return
        part.transcript = transcript.text
        part.language = transcript.language
        self.record(item)
        if turn is not None:
            turn.transcript_at = (early.transcript_at if early else None) or time.monotonic()
        if settings is not None:
            self.emit(
                "conversation.item.input_audio_transcription.delta", item_id=item.id, content_index=0,
                delta=transcript.text,
            )  # fmt: skip
            self.emit(
                "conversation.item.input_audio_transcription.completed",
                item_id=item.id,
                content_index=0,
                transcript=transcript.text,
                usage={"type": "duration", "seconds": round(transcript.audio_seconds, 3)},
                **({"language": transcript.language} if self.report_language else {}),
            )

    async def transcripts_ready(self, items: list[Item]) -> None:
        pending = [self._transcriptions[item.id] for item in items if item.id in self._transcriptions]
        if pending:
            # asyncio.wait, not gather: a response cancelled while it waits must not cancel the transcriptions,
            # which belong to the turns (the caller's words stay in the conversation).
            await asyncio.wait(pending)

    def speaker(self, params: ResponseParams, language: str | None) -> Speaker:
        return self.voice.speaker(params.voice, self.config.speed, language, params.output_format)

    def default_response(self, turn: TurnTiming | None = None, early: EarlyAnswer | None = None) -> Response:
        """What a turn detected by VAD gets: a response with the session's settings."""
        params = GAResponseCreate().to_params(self.config, self.conversation)
        return Response(self, params, self.conversation, self.llm, turn=turn, early=early)

    def report_turn(self, response_id: str, timing: TurnTiming) -> None:
        timing.observe()
        if self._report_timings:
            self.emit(TURN_TIMINGS_EVENT, **timing.event_fields(response_id))

    # Responses -------------------------------------------------------------------------------------------

    def start_response(self, response: Response) -> None:
        if response.in_conversation:
            self._disarm_idle_timeout()
            self.active_response = response
        else:
            self.out_of_band.add(response)
        task = response.start()
        self.own(task)
        task.add_done_callback(lambda done: self._response_finished(response, done))

    def _response_finished(self, response: Response, task: asyncio.Task[None]) -> None:
        self.out_of_band.discard(response)
        if self.active_response is response:
            self.active_response = None
            if response.status == "completed" and not self._closing:
                self._arm_idle_timeout(response.output_audio_ms)

    # Idle timeout (GA server_vad) ----------------------------------------------------------------------

    def _arm_idle_timeout(self, playback_ms: int) -> None:
        """After the answer has played (its audio length from now) and ``idle_timeout_ms`` more of silence,
        the session prompts the caller by itself."""
        detection = self.config.turn_detection
        if self.dialect is not Dialect.GA or detection is None or detection.type != "server_vad":
            return
        if not detection.idle_timeout_ms:
            return
        self._disarm_idle_timeout()
        self._idle_since_ms = self.listener.end_ms
        delay_s = (playback_ms + detection.idle_timeout_ms) / 1000
        self._idle_timer = asyncio.get_running_loop().call_later(delay_s, self._idle_timeout)

    def _disarm_idle_timeout(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_timeout(self) -> None:
        self._idle_timer = None
        if self.active_response is not None or (self.listener.tracker and self.listener.tracker.in_speech):
            return
        item_id = new_id("item")
        self.emit(
            "input_audio_buffer.timeout_triggered",
            item_id=item_id,
            audio_start_ms=self._idle_since_ms,
            audio_end_ms=self.listener.end_ms,
        )
        self.commit_audio(item_id)
        self.start_response(self.default_response())

    async def close(self) -> None:
        """Cancel everything the session started; nothing outlives it."""
        self._closing = True
        self._disarm_idle_timeout()
        if self._early is not None:
            await self._early.drop()
            self._early = None
        responses = [r for r in (self.active_response, *self.out_of_band) if r is not None]
        for response in responses:
            await response.cancel("client_cancelled")
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.finish_writing()
