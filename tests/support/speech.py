"""Real recordings from the shared speech folders, streamed to a server at real-time pace."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from parley.voice import audio as codec
from tests.conformance.paths import shared_dir

from .client import RecordingConnection

FRAME_MS = 20


@dataclass(frozen=True)
class Utterance:
    id: str
    path: Path
    text: str
    language: str

    def samples(self, rate: int) -> np.ndarray:
        """The recording as int16 at ``rate``."""
        audio, source_rate = soundfile.read(self.path, dtype="float32")
        resampled = soxr.resample(audio, source_rate, rate) if source_rate != rate else audio
        return np.clip(resampled * 32768, -32768, 32767).astype(np.int16)


def utterances(folder: str) -> list[Utterance]:
    root = shared_dir() / "speech" / folder
    lines = (root / "manifest.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    return [Utterance(e["id"], root / e["audio"], e["text"], e["lang"]) for e in entries]


def utterance(folder: str, utterance_id: str) -> Utterance:
    return next(u for u in utterances(folder) if u.id == utterance_id)


def encode_for(samples_24k: np.ndarray, audio_format: codec.AudioFormatName) -> bytes:
    """24 kHz int16 in the session's input format (G.711 formats are 8 kHz)."""
    rate = codec.SAMPLE_RATES[audio_format]
    samples = samples_24k if rate == 24_000 else soxr.resample(samples_24k, 24_000, rate)
    return codec.encode(np.asarray(samples, dtype=np.int16), audio_format)


def silence(ms: int) -> np.ndarray:
    return np.zeros(24 * ms, dtype=np.int16)


async def stream(
    conn: RecordingConnection,
    samples_24k: np.ndarray,
    audio_format: codec.AudioFormatName = "pcm16",
    realtime: bool = True,
) -> None:
    """Append the audio in 20 ms frames, paced like a microphone when ``realtime``."""
    data = encode_for(samples_24k, audio_format)
    step = codec.bytes_per_ms(audio_format) * FRAME_MS
    loop = asyncio.get_running_loop()
    started = loop.time()
    for index, offset in enumerate(range(0, len(data), step)):
        chunk = base64.b64encode(data[offset : offset + step]).decode("ascii")
        await conn.connection.send({"type": "input_audio_buffer.append", "audio": chunk})
        if realtime:
            await asyncio.sleep(max(0.0, started + (index + 1) * FRAME_MS / 1000 - loop.time()))
