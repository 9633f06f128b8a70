"""``parley talk``: a spoken conversation through an audio device, with a live transcript and barge-in.

The server detects turns (server VAD by default) and stops its answer when the caller speaks over it; this
client stops playing at once and tells the server how much of the answer was heard
(``conversation.item.truncate``), so the conversation keeps only the words that were actually played.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from typing import Any, TextIO

from openai import AsyncOpenAI

from .audio_io import AudioDevice

SETTLE_TIMEOUT_S = 120.0  # after the microphone ends: the longest wait for the last answer to be played


@dataclass
class TalkLog:
    """What was said, for whoever runs the conversation (tests read it)."""

    user_turns: list[str] = field(default_factory=list)
    answers: list[tuple[str, str]] = field(default_factory=list)  # (status, text heard)
    truncations: list[tuple[str, int]] = field(default_factory=list)  # (item id, audio_end_ms), as confirmed


class TranscriptPrinter:
    """``You: ...`` and ``Parley: ...`` lines, the answer written word by word as it is spoken."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._open: str | None = None  # the response whose line is being written
        self.answers: dict[str, str] = {}

    def user(self, text: str) -> None:
        self._end_line()
        self._write(f"You: {text}\n")

    def answer_delta(self, response_id: str, delta: str) -> None:
        if self._open != response_id:
            self._end_line()
            self._write("Parley: ")
            self._open = response_id
            delta = delta.lstrip()
        self.answers[response_id] = self.answers.get(response_id, "") + delta
        self._write(delta)

    def answer_done(self, response_id: str, interrupted: bool) -> None:
        if self._open == response_id:
            self._write(" [interrupted]\n" if interrupted else "\n")
            self._open = None

    def interrupted(self, response_id: str, heard_ms: int) -> None:
        """The caller spoke over this answer; its text may already have been written out in full."""
        if self._open == response_id:
            self.answer_done(response_id, interrupted=True)
        else:
            self.note(f"interrupted after {heard_ms / 1000:.1f} s")

    def note(self, text: str) -> None:
        self._end_line()
        self._write(f"({text})\n")

    def _end_line(self) -> None:
        if self._open is not None:
            self._write("\n")
            self._open = None

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()


class _Conversation:
    """Server events in, sound and transcript out."""

    def __init__(self, conn: Any, device: AudioDevice, printer: TranscriptPrinter, log: TalkLog) -> None:
        self.conn = conn
        self.device = device
        self.printer = printer
        self.log = log
        self.in_progress: set[str] = set()  # responses not yet done
        self.interrupted: set[str] = set()  # responses the caller spoke over: their late audio is dropped
        self.response_of_item: dict[str, str] = {}

    async def send_microphone(self) -> None:
        async for chunk in self.device.microphone():
            await self.conn.input_audio_buffer.append(audio=base64.b64encode(chunk).decode("ascii"))

    async def receive(self) -> None:
        async for event in self.conn:
            await self.handle(event)

    async def handle(self, event: Any) -> None:
        playback = self.device.playback
        if event.type == "input_audio_buffer.speech_started":
            await self.barge_in()
        elif event.type == "conversation.item.input_audio_transcription.completed":
            text = event.transcript.strip()
            self.log.user_turns.append(text)
            self.printer.user(text or "(nothing recognised)")
        elif event.type == "response.created":
            self.in_progress.add(event.response.id)
        elif event.type in {"response.output_audio_transcript.delta", "response.output_text.delta"}:
            if event.response_id not in self.interrupted:
                self.printer.answer_delta(event.response_id, event.delta)
        elif event.type == "response.output_audio.delta":
            self.response_of_item[event.item_id] = event.response_id
            if event.response_id not in self.interrupted:
                playback.write(event.item_id, base64.b64decode(event.delta))
        elif event.type == "response.done":
            response = event.response
            self.in_progress.discard(response.id)
            interrupted = response.status == "cancelled" or response.id in self.interrupted
            self.printer.answer_done(response.id, interrupted)
            self.log.answers.append((response.status, self.printer.answers.get(response.id, "")))
        elif event.type == "conversation.item.truncated":
            self.log.truncations.append((event.item_id, event.audio_end_ms))
        elif event.type == "error":
            self.printer.note(f"server error: {event.error.message}")

    async def barge_in(self) -> None:
        """The caller started speaking: silence the answer now, and say how much of it was heard."""
        item_id = self.device.playback.clear()
        if item_id is None:
            return
        heard_ms = self.device.playback.heard_ms(item_id)
        if response_id := self.response_of_item.get(item_id):
            self.interrupted.add(response_id)
            self.printer.interrupted(response_id, heard_ms)
        await self.conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=heard_ms)

    async def settle(self) -> None:
        """Wait until every answer is done and played."""
        while self.in_progress or self.device.playback.playing:
            await asyncio.sleep(0.05)


async def talk(client: AsyncOpenAI, model: str, device: AudioDevice, session: dict[str, Any], out: TextIO) -> TalkLog:
    """Talk until the microphone ends (a real one does not: cancel, e.g. with Ctrl+C) or the server hangs up."""
    log = TalkLog()
    async with client.realtime.connect(model=model) as conn:
        await conn.session.update(session=session)  # type: ignore[arg-type]
        conversation = _Conversation(conn, device, TranscriptPrinter(out), log)
        sender = asyncio.create_task(conversation.send_microphone(), name="talk-microphone")
        receiver = asyncio.create_task(conversation.receive(), name="talk-events")
        try:
            await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver.done():
                receiver.result()  # a failure surfaces here
                conversation.printer.note("the server closed the connection")
            else:
                sender.result()
                await asyncio.wait_for(conversation.settle(), SETTLE_TIMEOUT_S)
        finally:
            for task in (sender, receiver):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return log
