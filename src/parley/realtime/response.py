"""One response's lifecycle. Every ``*.added`` gets its ``*.done`` by construction, also on cancel or failure."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, Protocol

from ..engines.llm import EngineError, GenerationRequest, GenerationStats, LanguageModel
from ..ids import new_id
from ..metrics import ACTIVE_RESPONSES, FIRST_OUTPUT_SECONDS, RESPONSES
from ..voice import audio as codec
from ..voice.clauses import ClauseChunker
from ..voice.speaker import Speaker
from .conversation import Conversation, chat_messages
from .dialect import Dialect
from .function_calls import FunctionCallItems, ModelOutput, tool_request
from .items import ContentPart, Item
from .response_params import ResponseParams
from .session_config import ga_format

log = logging.getLogger(__name__)

# Audio goes out in deltas of this length: small enough to start playback early, few enough events.
AUDIO_DELTA_MS = 200

Status = Literal["in_progress", "completed", "cancelled", "incomplete", "failed"]
CancelReason = Literal["turn_detected", "client_cancelled"]


class EventSink(Protocol):
    """What a response needs from its session: ordered, dialect-aware event output, and its voice."""

    dialect: Dialect

    def emit(self, type: str, **fields: Any) -> None: ...

    async def transcripts_ready(self, items: list[Item]) -> None:
        """Wait until the user audio among ``items`` has its transcript (the model reads transcripts)."""
        ...

    def speaker(self, params: ResponseParams, language: str | None) -> Speaker | None:
        """A speaker for this response's voice and output format, or None when the server has no voice."""
        ...

    def item_added(self, item: Item, previous_item_id: str | None) -> None: ...

    def item_done(self, item: Item, previous_item_id: str | None) -> None: ...


class Response:
    def __init__(self, sink: EventSink, params: ResponseParams, conversation: Conversation, llm: LanguageModel) -> None:
        self.id = new_id("resp")
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

    async def _generate(self) -> None:
        params = self.params
        context = params.input_items if params.input_items is not None else self._conversation.items
        await self._sink.transcripts_ready(context)
        self._input_audio_ms = sum(_audio_ms(part) for item in context for part in item.content)
        max_tokens = None if params.max_output_tokens == "inf" else params.max_output_tokens
        request = GenerationRequest(
            messages=chat_messages(params.instructions, context),
            max_tokens=max_tokens,
            temperature=params.temperature,
            **tool_request(params),
        )
        speaker = (
            self._sink.speaker(params, _last_user_language(context)) if "audio" in params.output_modalities else None
        )
        self._started = time.monotonic()
        stream = self._llm.generate(request)
        self._stats = stream.stats
        output = ModelOutput(stream, calls_possible=bool(request.tools))
        try:
            if await output.has_message():
                with self._message_item() as item:
                    if speaker is None:
                        with self._text_part(item) as part:
                            async for delta in output.text():
                                self._first_output()
                                part.text = (part.text or "") + delta
                                self._emit_part_event("response.output_text.delta", item, delta=delta)
                    else:
                        with self._audio_part(item) as part:
                            await self._speak(output.text(), speaker, item, part)
            conversation = self._conversation if self.in_conversation else None
            calls = FunctionCallItems(self._sink, self.id, self.output, conversation, params.tools)
            await calls.write(output.calls(), self._stats)
        finally:
            await stream.aclose()

    async def _speak(self, stream: AsyncIterator[str], speaker: Speaker, item: Item, part: ContentPart) -> None:
        """Text becomes speech clause by clause while the model keeps writing in its own thread."""
        chunker = ClauseChunker()
        async for delta in stream:
            for clause in chunker.push(delta):
                await self._say(speaker, clause, item, part)
        if rest := chunker.flush():
            await self._say(speaker, rest, item, part)
        if tail := await speaker.finish():
            self._audio_out.append(tail)
            self._emit_part_event("response.output_audio.delta", item, delta=base64.b64encode(tail).decode("ascii"))

    async def _say(self, speaker: Speaker, clause: str, item: Item, part: ContentPart) -> None:
        spoken = await speaker.say(clause)
        self._first_output()
        part.transcript = speaker.transcript
        part.word_ends.extend(spoken.word_ends)
        self._audio_out.append(spoken.audio)
        self._output_audio_ms += spoken.duration_ms
        self._emit_part_event("response.output_audio_transcript.delta", item, delta=spoken.text)
        step = AUDIO_DELTA_MS * codec.bytes_per_ms(self.params.output_format)
        for start in range(0, len(spoken.audio), step):
            chunk = base64.b64encode(spoken.audio[start : start + step]).decode("ascii")
            self._emit_part_event("response.output_audio.delta", item, delta=chunk)

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


def _audio_ms(part: ContentPart) -> int:
    if part.type != "input_audio" or part.audio is None or part.audio_format is None:
        return 0
    return len(part.audio) // codec.bytes_per_ms(part.audio_format)  # type: ignore[arg-type]


def _last_user_language(items: list[Item]) -> str | None:
    """The language the caller last spoke in, as the recognizer detected it."""
    for item in reversed(items):
        if item.role == "user":
            for part in item.content:
                if part.language:
                    return part.language
            return None
    return None
