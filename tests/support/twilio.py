"""A Twilio-shaped client: plays one phone call on ``/twilio/media`` as Twilio's Media Streams do.

It sends ``connected`` and ``start``, then a ``media`` message of μ-law every 20 ms at real-time pace for the
whole call (silence between what the caller says), and plays what the server sends as Twilio would: ``media``
joins a playback buffer drained at real time, a ``mark`` is echoed once the audio before it has been played, and
``clear`` empties the buffer and echoes the marks still in it at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
import websockets

from parley.telephony.twilio_signature import signature
from parley.voice import audio as codec

FRAME_BYTES = 160  # 20 ms at 8 kHz
FRAME_S = 0.02
SILENCE = bytes([0xFF]) * FRAME_BYTES  # μ-law zero


def mulaw_8k(samples_24k: np.ndarray) -> bytes:
    return codec.encode(np.asarray(soxr.resample(samples_24k, 24_000, 8_000), dtype=np.int16), "g711_ulaw")


def onset_frame(audio: bytes, fraction: float = 0.1) -> int:
    """The first 20 ms frame louder than ``fraction`` of the loudest: where the speech starts."""
    samples = codec.decode(audio, "g711_ulaw").astype(np.float32)
    frames = samples[: len(samples) // FRAME_BYTES * FRAME_BYTES].reshape(-1, FRAME_BYTES)
    rms = np.sqrt((frames**2).mean(axis=1))
    return int(np.argmax(rms > fraction * rms.max()))


@dataclass
class Played:
    """An echoed mark: when, and how much of the server's audio had been played by then (bytes, since start)."""

    at: float
    name: str
    played_bytes: int


@dataclass
class TwilioCall:
    url: str  # ws:// address of /twilio/media
    signed_url: str | None = None  # the wss:// address Twilio would sign (the TwiML's), when a token is set
    auth_token: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    call_sid: str = "CA00000000000000000000000000000001"
    stream_sid: str = "MZ00000000000000000000000000000001"
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    media_in: list[tuple[float, bytes]] = field(default_factory=list)
    clears: list[tuple[float, int]] = field(default_factory=list)  # (when, bytes played by then)
    marks: list[Played] = field(default_factory=list)
    # Per utterance said, when its first frame and its onset frame were due (a phone line delivers each frame
    # on time; the sender may catch up after a stall, and the lateness is not the server's).
    said: list[tuple[float, float]] = field(default_factory=list)
    played_bytes: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._speech: deque[tuple[bytes, str | None]] = deque()  # frames to say: "first", "onset" or None
        self._buffer: deque[bytes | str] = deque()  # playback: audio frames and mark names
        self._onset_after = 0
        self._sequence = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._socket: Any = None

    async def __aenter__(self) -> TwilioCall:
        headers = {}
        if self.auth_token:
            headers["X-Twilio-Signature"] = signature(self.auth_token, self.signed_url or self.url)
        self._socket = await websockets.connect(self.url, additional_headers=headers, max_size=None)
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        start = {
            "accountSid": "AC00000000000000000000000000000001",
            "streamSid": self.stream_sid,
            "callSid": self.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": self.parameters,
        }
        await self.send({"event": "start", "start": start, "streamSid": self.stream_sid})
        self._tasks = [asyncio.create_task(work) for work in (self._talk(), self._listen(), self._play())]
        return self

    async def __aexit__(self, *_: object) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await self._socket.close()

    async def send(self, message: dict[str, Any]) -> None:
        self._sequence += 1
        await self._socket.send(json.dumps({**message, "sequenceNumber": str(self._sequence)}))

    def say(self, audio: bytes) -> None:
        """Speak ``audio`` (μ-law) next, in 20 ms frames; when it began and its onset are recorded in ``said``."""
        onset = onset_frame(audio)
        for number, start in enumerate(range(0, len(audio), FRAME_BYTES)):
            frame = audio[start : start + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
            self._speech.append((frame, "first" if number == 0 else None))
        self._onset_after = onset

    async def hang_up(self) -> None:
        await self.send({"event": "stop", "streamSid": self.stream_sid, "stop": {"callSid": self.call_sid}})

    async def _talk(self) -> None:
        """A media message every 20 ms for the whole call, as a phone line does."""
        started = time.monotonic()
        chunk = 0
        while True:
            frame, first = self._speech.popleft() if self._speech else (SILENCE, None)
            due = started + chunk * FRAME_S
            if first:
                self.said.append((due, due + self._onset_after * FRAME_S))
            chunk += 1
            media = {"track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20), "payload": _b64(frame)}
            await self.send({"event": "media", "streamSid": self.stream_sid, "media": media})
            await asyncio.sleep(max(0.0, started + chunk * FRAME_S - time.monotonic()))

    async def _listen(self) -> None:
        try:
            async for text in self._socket:
                message = json.loads(text)
                now = time.monotonic()
                self.received.append((now, message))
                if message["event"] == "media":
                    audio = base64.b64decode(message["media"]["payload"])
                    self.media_in.append((now, audio))
                    self._buffer.append(audio)
                elif message["event"] == "mark":
                    self._buffer.append(message["mark"]["name"])
                elif message["event"] == "clear":
                    self.clears.append((now, self.played_bytes))
                    left = [entry for entry in self._buffer if isinstance(entry, str)]
                    self._buffer.clear()
                    for name in left:  # Twilio echoes the marks of cleared audio at once
                        await self._echo(name)
        finally:
            self.closed.set()

    async def _play(self) -> None:
        """Drain the playback buffer at real time, echoing each mark when the audio before it has played."""
        next_tick = time.monotonic()
        while True:
            while self._buffer and isinstance(self._buffer[0], str):
                await self._echo(self._buffer.popleft())  # type: ignore[arg-type]
            if self._buffer:
                self.played_bytes += len(self._buffer.popleft())
                next_tick += FRAME_S
            else:
                next_tick = time.monotonic() + 0.005
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))

    async def _echo(self, name: str) -> None:
        self.marks.append(Played(time.monotonic(), name, self.played_bytes))
        await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
