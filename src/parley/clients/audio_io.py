"""A microphone and a speaker for ``parley talk``, both 16-bit mono at the Realtime API's 24 kHz.

``AudioDevice`` is the whole surface the conversation uses, so tests can pass a device that plays a
recording as the microphone; ``Playback`` (what is queued, what has been heard) is shared by every device.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Protocol

RATE = 24_000
BYTES_PER_SAMPLE = 2
CHUNK_SAMPLES = 960  # 40 ms: quick turn detection without a flood of events


class NoAudioDevice(RuntimeError):
    """There is no usable microphone or speaker (or no PortAudio at all)."""


class Playback:
    """Answer audio waiting to be played, item by item, and how much of each item has been heard.

    ``write`` and ``clear`` come from the event loop, ``read`` from the audio thread: a lock keeps them apart.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[tuple[str, bytes]] = deque()
        self._offset = 0
        self._heard: dict[str, int] = {}  # item id -> bytes played

    def write(self, item_id: str, pcm: bytes) -> None:
        with self._lock:
            self._queue.append((item_id, pcm[: len(pcm) - len(pcm) % BYTES_PER_SAMPLE]))

    def read(self, frames: int) -> bytes:
        """Exactly ``frames`` samples to play now: queued audio, then silence."""
        wanted = frames * BYTES_PER_SAMPLE
        out = bytearray()
        with self._lock:
            while len(out) < wanted and self._queue:
                item_id, pcm = self._queue[0]
                piece = pcm[self._offset : self._offset + wanted - len(out)]
                out += piece
                self._offset += len(piece)
                self._heard[item_id] = self._heard.get(item_id, 0) + len(piece)
                if self._offset >= len(pcm):
                    self._queue.popleft()
                    self._offset = 0
        return bytes(out) + bytes(wanted - len(out))

    def clear(self) -> str | None:
        """Drop everything queued (the caller spoke over it); return the item that was playing."""
        with self._lock:
            playing = self._queue[0][0] if self._queue else None
            self._queue.clear()
            self._offset = 0
        return playing

    @property
    def playing(self) -> bool:
        with self._lock:
            return bool(self._queue)

    def heard_ms(self, item_id: str) -> int:
        with self._lock:
            return self._heard.get(item_id, 0) // BYTES_PER_SAMPLE * 1000 // RATE


class AudioDevice(Protocol):
    playback: Playback

    def microphone(self) -> AsyncIterator[bytes]:
        """pcm16 chunks at 24 kHz as they are captured; ends only if the source does."""
        ...

    async def close(self) -> None: ...


class SoundDevice:
    """The machine's microphone and speaker through PortAudio (``sounddevice``)."""

    def __init__(self, input_device: int | str | None = None, output_device: int | str | None = None) -> None:
        try:
            import sounddevice
        except OSError as exc:  # the wheel for Linux does not bundle PortAudio itself
            message = f"PortAudio is not installed ({exc}); on Debian: apt-get install libportaudio2"
            raise NoAudioDevice(message) from None
        self.playback = Playback()
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def captured(data: Any, _frames: int, _time: Any, _status: Any) -> None:
            loop.call_soon_threadsafe(self._chunks.put_nowait, bytes(data))

        def play(out: Any, frames: int, _time: Any, _status: Any) -> None:
            out[:] = self.playback.read(frames)

        options: dict[str, Any] = {"samplerate": RATE, "channels": 1, "dtype": "int16", "blocksize": CHUNK_SAMPLES}
        self._streams: list[Any] = []
        try:
            self._input = sounddevice.RawInputStream(device=input_device, callback=captured, **options)
            self._streams.append(self._input)
            self._output = sounddevice.RawOutputStream(device=output_device, callback=play, **options)
            self._streams.append(self._output)
        except (sounddevice.PortAudioError, ValueError) as exc:
            self._close_streams()
            raise NoAudioDevice(_describe(exc, sounddevice)) from None
        self._input.start()
        self._output.start()

    async def microphone(self) -> AsyncIterator[bytes]:
        while True:
            yield await self._chunks.get()

    async def close(self) -> None:
        self._close_streams()

    def _close_streams(self) -> None:
        for stream in self._streams:
            stream.stop()
            stream.close()
        self._streams = []


def _describe(exc: Exception, sounddevice: Any) -> str:
    try:
        devices = sounddevice.query_devices()
    except sounddevice.PortAudioError:
        devices = []
    if len(devices) == 0:
        return "no audio device found (no microphone or speaker)"
    return (
        f"the audio device could not be opened at 24 kHz mono ({exc}); "
        "pick another with --input-device / --output-device (list them: python -m sounddevice)"
    )
