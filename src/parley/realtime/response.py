"""One response's lifecycle. Every ``*.added`` gets its ``*.done`` by construction, also on cancel or failure."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..engines.llm import EngineError, GenerationRequest, GenerationStats, LanguageModel, ToolCallDelta
from ..ids import new_id
from ..knowledge import KnowledgeBase
from ..metrics import ACTIVE_RESPONSES, FIRST_OUTPUT_SECONDS, RESPONSES
from ..voice import audio as codec
from ..voice.speaker import Speaker, SpokenClause
from .answer import AnswerStream, AudioTail, Piece, TextDelta
from .context import build_messages, last_user_language
from .conversation import Conversation
from .dialect import Dialect
from .function_calls import FunctionCallItems, tool_request
from .items import ContentPart, Item
from .response_params import ResponseParams
from .session_config import ga_format
from .turn_timing import TurnTiming

if TYPE_CHECKING:
    from .early_answer import EarlyAnswer

log = logging.getLogger(__name__)

# Audio goes out in deltas of this length: small enough to start playback early, few enough events.
AUDIO_DELTA_MS = 200

Status = Literal["in_progress", "completed", "cancelled", "incomplete", "failed"]
CancelReason = Literal["turn_detected", "client_cancelled"]


class EventSink(Protocol):
    """What a response needs from its session: ordered, dialect-aware event output, and its voice."""

    dialect: Dialect
    knowledge: KnowledgeBase | None  # the session's knowledge base, searched for every response

    def emit(self, type: str, **fields: Any) -> None: ...

    async def transcripts_ready(self, items: list[Item]) -> None:
        """Wait until the user audio among ``items`` has its transcript (the model reads transcripts)."""
        ...

    def speaker(self, params: ResponseParams, language: str | None) -> Speaker | None:
        """A speaker for this response's voice and output format, or None when the server has no voice."""
        ...

    def item_added(self, item: Item, previous_item_id: str | None) -> None: ...

    def item_done(self, item: Item, previous_item_id: str | None) -> None: ...

    def report_turn(self, response_id: str, timing: TurnTiming) -> None:
        """A voice turn's answer is done: record (and, where asked for, send) where its time went."""
        ...


class Response:
    def __init__(
        self,
        sink: EventSink,
        params: ResponseParams,
        conversation: Conversation,
        llm: LanguageModel,
        *,
        turn: TurnTiming | None = None,
        early: EarlyAnswer | None = None,
    ) -> None:
        """``turn``: the voice turn this answers (its timing is filled in); ``early``: an answer prepared for
        that turn during its final pause, used when it asked the model exactly what this response asks."""
        self.id = new_id("resp")
        self.turn = turn
        self._early = early
        self.params = params
        self._sink = sink
        self._conversation = conversation
        self._llm = llm
        self.status: Status = "in_progress"
        self._details: dict[str, Any] | None = None
        self.output: list[Item] = []
        self._stats = GenerationStats()
        self._cancel_reason: CancelReason | None = None
        self._task: asyncio.Task[None] | None = None
        self._input_audio_ms = 0
        self._output_audio_ms = 0
        self._audio_out: list[bytes] = []
        self._started = time.monotonic()
        self._first_output_seen = False

    @property
    def output_audio_ms(self) -> int:
        return self._output_audio_ms

    @property
    def in_conversation(self) -> bool:
        return self.params.in_conversation

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._run(), name=f"response-{self.id}")
        return self._task

    async def cancel(self, reason: CancelReason) -> None:
        """Stop now and wait until ``response.done`` has been emitted."""
        if self._task is None or self._task.done():
            return
        self._cancel_reason = reason
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def render(self) -> dict[str, Any]:
        dialect = self._sink.dialect
        wire: dict[str, Any] = {
            "object": "realtime.response",
            "id": self.id,
            "status": self.status,
            "status_details": self._details,
            "output": [item.render(dialect) for item in self.output],
            "conversation_id": self._conversation.id if self.in_conversation else None,
            "max_output_tokens": self.params.max_output_tokens,
            "usage": self._usage() if self.status != "in_progress" else None,
            "metadata": self.params.metadata,
        }
        if dialect is Dialect.GA:
            wire["output_modalities"] = self.params.output_modalities
            wire["audio"] = {"output": {"format": ga_format(self.params.output_format), "voice": self.params.voice}}
        else:
            wire["modalities"] = self.params.output_modalities
            wire["voice"] = self.params.voice
            wire["output_audio_format"] = self.params.output_format
            wire["temperature"] = self.params.temperature
        return wire

    async def _run(self) -> None:
        self._sink.emit("response.created", response=self.render())
        ACTIVE_RESPONSES.inc()
        try:
            await self._generate()
        except asyncio.CancelledError:
            self._finish("cancelled", {"type": "cancelled", "reason": self._cancel_reason or "client_cancelled"})
            raise
        except EngineError as exc:
            log.warning("response %s failed: %s", self.id, exc)
            error = {"type": "server_error", "code": exc.code, "message": str(exc)}
            self._finish("failed", {"type": "failed", "error": error})
        except Exception:
            log.exception("response %s failed unexpectedly", self.id)
            error = {"type": "server_error", "code": "internal_error", "message": "The response failed."}
            self._finish("failed", {"type": "failed", "error": error})
        else:
            if self._stats.finish_reason == "length":
                self._finish("incomplete", {"type": "incomplete", "reason": "max_output_tokens"})
            else:
                self._finish("completed", None)
        finally:
            if self._early is not None:  # ended before it could take the prepared answer over
                await self._early.drop()

    async def request_for(self, context: list[Item]) -> GenerationRequest:
        """What this response asks the model, given the items it answers (their transcripts ready)."""
        params = self.params
        return GenerationRequest(
            messages=await build_messages(params.instructions, context, self._sink.knowledge),
            max_tokens=None if params.max_output_tokens == "inf" else params.max_output_tokens,
            temperature=params.temperature,
            **tool_request(params),
        )

    def speaker_for(self, context: list[Item]) -> Speaker | None:
        """The voice this response speaks with (in the caller's last language), or None for text."""
        if "audio" not in self.params.output_modalities:
            return None
        return self._sink.speaker(self.params, last_user_language(context))

    async def _generate(self) -> None:
        params = self.params
        context = params.input_items if params.input_items is not None else self._conversation.items
        await self._sink.transcripts_ready(context)
        self._input_audio_ms = sum(_audio_ms(part) for item in context for part in item.content)
        if self.turn is not None and _wordless(context, self.turn.item_id):
            # A click or a breath the VAD took for speech: a model asked to answer nothing makes something up,
            # and its audio would talk over the caller who is about to speak. Done, with nothing said.
            return
        request = await self.request_for(context)
        speaker = self.speaker_for(context)
        self._started = time.monotonic()
        early, self._early = self._early, None
        answer = await early.take(request, speaker) if early is not None else None
        if answer is None:
            answer = AnswerStream(self._llm.generate(request), speaker)
        elif self.turn is not None:
            self.turn.speculative = True
        self._stats = answer.stats
        try:
            pieces = aiter(answer.pieces())
            first = await anext(pieces, None)
            # A message item only when the model says something (without tools it always does, maybe nothing).
            call = first if isinstance(first, ToolCallDelta) else None
            if call is None and (first is not None or not request.tools):
                call = await self._message(answer, first, pieces)
            if call is not None:
                conversation = self._conversation if self.in_conversation else None
                calls = FunctionCallItems(self._sink, self.id, self.output, conversation, params.tools)
                await calls.write(_chain(call, pieces), self._stats)
        finally:
            await answer.close()
            if self.turn is not None:
                self.turn.llm_first_token_at = answer.first_token_at

    async def _message(
        self, answer: AnswerStream, first: Piece | None, pieces: AsyncIterator[Piece | ToolCallDelta]
    ) -> ToolCallDelta | None:
        """Send the message the model writes (text or speech); return the first call after it, if any."""
        piece: Piece | ToolCallDelta | None = first
        with self._message_item() as item:
            if answer.speaker is None:
                with self._text_part(item) as part:
                    while isinstance(piece, TextDelta):
                        self._first_output()
                        part.text = (part.text or "") + piece.text
                        self._emit_part_event("response.output_text.delta", item, delta=piece.text)
                        piece = await anext(pieces, None)
            else:
                with self._audio_part(item) as part:
                    while isinstance(piece, SpokenClause | AudioTail):
                        self._send_audio(piece, item, part)
                        piece = await anext(pieces, None)
        return piece if isinstance(piece, ToolCallDelta) else None

    def _send_audio(self, piece: Piece, item: Item, part: ContentPart) -> None:
        if isinstance(piece, AudioTail):
            self._audio_out.append(piece.audio)
            self._emit_part_event("response.output_audio.delta", item, delta=_b64(piece.audio))
            return
        assert isinstance(piece, SpokenClause)
        self._first_output()
        part.transcript = (part.transcript or "") + piece.text
        part.word_ends.extend(piece.word_ends)
        self._audio_out.append(piece.audio)
        self._output_audio_ms += piece.duration_ms
        self._emit_part_event("response.output_audio_transcript.delta", item, delta=piece.text)
        step = AUDIO_DELTA_MS * codec.bytes_per_ms(self.params.output_format)
        for start in range(0, len(piece.audio), step):
            self._emit_part_event("response.output_audio.delta", item, delta=_b64(piece.audio[start : start + step]))
        if self.turn is not None:
            self.turn.mark_first_audio()

    def _first_output(self) -> None:
        if not self._first_output_seen:
            self._first_output_seen = True
            FIRST_OUTPUT_SECONDS.observe(time.monotonic() - self._started)

    @contextlib.contextmanager
    def _message_item(self) -> Iterator[Item]:
        item = Item(id=new_id("item"), type="message", role="assistant", status="in_progress", content=[])
        self.output.append(item)
        previous: str | None = None
        self._sink.emit(
            "response.output_item.added", response_id=self.id, output_index=0, item=item.render(self._sink.dialect)
        )
        if self.in_conversation:
            previous = self._conversation.insert(item)
            self._sink.item_added(item, previous)
        try:
            yield item
            item.status = "incomplete" if self._stats.finish_reason == "length" else "completed"
        except BaseException:
            item.status = "incomplete"
            raise
        finally:
            if self.in_conversation:
                self._sink.item_done(item, previous)
            self._sink.emit(
                "response.output_item.done", response_id=self.id, output_index=0, item=item.render(self._sink.dialect)
            )

    @contextlib.contextmanager
    def _text_part(self, item: Item) -> Iterator[ContentPart]:
        part = ContentPart(type="output_text", text="")
        self._emit_part_event("response.content_part.added", item, part={"type": "text", "text": ""})
        item.content.append(part)
        try:
            yield part
        finally:
            self._emit_part_event("response.output_text.done", item, text=part.text)
            self._emit_part_event("response.content_part.done", item, part={"type": "text", "text": part.text})

    @contextlib.contextmanager
    def _audio_part(self, item: Item) -> Iterator[ContentPart]:
        part = ContentPart(type="output_audio", transcript="", audio_format=self.params.output_format)
        self._emit_part_event("response.content_part.added", item, part={"type": "audio", "transcript": ""})
        item.content.append(part)
        try:
            yield part
        finally:
            part.audio = b"".join(self._audio_out)  # joined once: appending bytes per clause would be quadratic
            self._emit_part_event("response.output_audio.done", item)
            self._emit_part_event("response.output_audio_transcript.done", item, transcript=part.transcript)
            self._emit_part_event(
                "response.content_part.done", item, part={"type": "audio", "transcript": part.transcript}
            )

    def _emit_part_event(self, type: str, item: Item, **fields: Any) -> None:
        self._sink.emit(type, response_id=self.id, item_id=item.id, output_index=0, content_index=0, **fields)

    def _finish(self, status: Status, details: dict[str, Any] | None) -> None:
        self.status = status
        self._details = details
        ACTIVE_RESPONSES.dec()
        RESPONSES.labels(status).inc()
        if self.turn is not None:
            self._sink.report_turn(self.id, self.turn)
        self._sink.emit("response.done", response=self.render())

    def _usage(self) -> dict[str, Any]:
        """Text tokens from the model's tokenizer; audio tokens as OpenAI counts them (10/s in, 20/s out)."""
        stats = self._stats
        audio_in = self._input_audio_ms // 100
        audio_out = self._output_audio_ms // 50
        usage: dict[str, Any] = {
            "total_tokens": stats.prompt_tokens + audio_in + stats.completion_tokens + audio_out,
            "input_tokens": stats.prompt_tokens + audio_in,
            "output_tokens": stats.completion_tokens + audio_out,
            "input_token_details": {
                "text_tokens": stats.prompt_tokens,
                "audio_tokens": audio_in,
                "cached_tokens": stats.cached_tokens,
            },
            "output_token_details": {"text_tokens": stats.completion_tokens, "audio_tokens": audio_out},
        }
        if self._sink.dialect is Dialect.GA:
            details = usage["input_token_details"]
            details["image_tokens"] = 0
            cached = {"text_tokens": stats.cached_tokens, "audio_tokens": 0, "image_tokens": 0}
            details["cached_tokens_details"] = cached
        return usage


async def _chain(first: ToolCallDelta, rest: AsyncIterator[Piece | ToolCallDelta]) -> AsyncIterator[ToolCallDelta]:
    """The calls: the first one already read, then the rest of the answer (nothing but calls follows)."""
    yield first
    async for piece in rest:
        if isinstance(piece, ToolCallDelta):
            yield piece


def _wordless(context: list[Item], item_id: str) -> bool:
    """Whether the user turn ``item_id`` was transcribed as no words at all."""
    turn = next((item for item in context if item.id == item_id), None)
    return turn is not None and all(not (part.transcript or "").strip() for part in turn.content)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _audio_ms(part: ContentPart) -> int:
    if part.type != "input_audio" or part.audio is None or part.audio_format is None:
        return 0
    return len(part.audio) // codec.bytes_per_ms(part.audio_format)  # type: ignore[arg-type]
