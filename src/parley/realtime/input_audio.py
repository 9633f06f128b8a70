"""The session's input audio buffer: raw bytes in the session's input format, with time in milliseconds."""

from __future__ import annotations

from .session_config import AudioFormatName

# Bytes of input per millisecond: pcm16 is 24 kHz 16-bit mono, G.711 is 8 kHz 8-bit.
BYTES_PER_MS: dict[AudioFormatName, int] = {"pcm16": 48, "g711_ulaw": 8, "g711_alaw": 8}

MIN_COMMIT_MS = 100


class InputAudioBuffer:
    def __init__(self) -> None:
        self._pending = bytearray()
        self.format: AudioFormatName = "pcm16"

    def append(self, audio: bytes) -> None:
        self._pending += audio

    def duration_ms(self) -> float:
        return len(self._pending) / BYTES_PER_MS[self.format]

    def take(self) -> bytes:
        audio = bytes(self._pending)
        self._pending.clear()
        return audio

    def clear(self) -> None:
        self._pending.clear()
