"""``parley ask``: one recorded question in, its transcript, the answer and the spoken answer out.

No audio device is involved, so it works in scripts, over SSH and in CI.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import soxr
from openai import AsyncOpenAI

RATE = 24_000
APPEND_SECONDS = 1  # audio per append event: 64 KiB of base64, far below any server's frame limit
MIN_SECONDS = 0.1  # servers refuse to commit less (OpenAI and Parley alike)
LATE_TRANSCRIPT_S = 5.0  # OpenAI may send the caller's transcript after the answer


class AskError(RuntimeError):
    """The server refused the request or the answer failed."""


@dataclass
class Answer:
    transcript: str | None = None  # the caller's words, as the server heard them
    text: str = ""  # the answer's words
    audio: bytearray = field(default_factory=bytearray)  # the spoken answer, pcm16 at 24 kHz
    status: str | None = None
    usage: dict[str, Any] | None = None

    def audio_samples(self) -> np.ndarray:
        return np.frombuffer(bytes(self.audio[: len(self.audio) // 2 * 2]), dtype="<i2")


def read_recording(path: Path) -> np.ndarray:
    """Any file libsndfile reads (WAV, FLAC, MP3, Ogg, ...), at any rate, as mono int16 at 24 kHz."""
    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if len(mono) < MIN_SECONDS * rate:
        raise ValueError(f"{path}: the recording is shorter than {MIN_SECONDS} s")
    if rate != RATE:
        mono = soxr.resample(mono, rate, RATE, quality="HQ")
    return np.clip(np.rint(mono * 32768), -32768, 32767).astype("<i2")


def write_answer(path: Path, samples: np.ndarray) -> None:
    soundfile.write(path, samples, RATE, subtype="PCM_16", format="WAV")


async def ask(
    client: AsyncOpenAI,
    model: str,
    samples: np.ndarray,
    session: dict[str, Any],
) -> Answer:
    """Send the recording as one committed turn, ask for a response and collect it."""
    answer = Answer()
    async with client.realtime.connect(model=model) as conn:
        await conn.session.update(session=session)  # type: ignore[arg-type]
        data = samples.astype("<i2").tobytes()
        step = APPEND_SECONDS * RATE * 2
        for start in range(0, len(data), step):
            await conn.input_audio_buffer.append(audio=base64.b64encode(data[start : start + step]).decode("ascii"))
        await conn.input_audio_buffer.commit()
        await conn.response.create()
        async for event in conn:
            if event.type == "error":
                raise AskError(event.error.message)
            if event.type == "conversation.item.input_audio_transcription.completed":
                answer.transcript = event.transcript.strip()
            elif event.type == "conversation.item.input_audio_transcription.failed":
                answer.transcript = ""
            elif event.type in {"response.output_audio_transcript.delta", "response.output_text.delta"}:
                answer.text += event.delta
            elif event.type == "response.output_audio.delta":
                answer.audio += base64.b64decode(event.delta)
            elif event.type == "response.done":
                answer.status = event.response.status
                answer.usage = event.response.usage.model_dump() if event.response.usage else None
                if event.response.status == "failed":
                    details = event.response.status_details
                    error = details.error if details else None
                    raise AskError(f"the answer failed: {error.message if error else 'no reason given'}")
                break
        if answer.transcript is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_late_transcript(conn, answer), LATE_TRANSCRIPT_S)
    answer.text = answer.text.strip()
    return answer


async def _late_transcript(conn: Any, answer: Answer) -> None:
    async for event in conn:
        if event.type == "conversation.item.input_audio_transcription.completed":
            answer.transcript = event.transcript.strip()
            return
