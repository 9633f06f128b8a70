"""Voice-to-voice latency over the WebSocket, with real recorded speech streamed as a microphone would.

One session per utterance, one after the other. Each session asks for spoken answers (``output_modalities``
``["audio"]``, "Answer in one short sentence."), input transcription and ``server_vad`` turn detection with a
chosen ``silence_duration_ms``. The recording, resampled to 24 kHz pcm16, is sent at real-time pace in 20 ms
``input_audio_buffer.append`` frames: 300 ms of digital silence, the recording, then silence frames for as long
as the session lasts (at least 2 s), as an open microphone would. The session closes after ``response.done``,
once those 2 s are sent and every committed turn's transcript is in (or 5 s more have passed).

The clock: the recordings carry little trailing silence, so the end of the recording stands for the last voiced
sample of the utterance. Voice-to-voice latency runs from sending the 20 ms frame that holds the recording's last
sample to receiving the first ``response.output_audio.delta``. Where a recording does end in a pause or in
noise, the true last voiced sample left earlier and the figure is that much too low; ``vad_end_offset_ms`` (the
server's ``audio_end_ms`` minus the recording's end in the stream) shows how far its VAD put the end earlier.

Every other event is timed from that same instant (negative when it came before): ``speech_stopped`` (turn
detection), ``committed``, the user's transcript, ``response.created`` and so on, which splits the latency by
stage as far as the wire shows it. Where the server's VAD cut the utterance into several turns, each stage is the
last one before the first audio delta, and the transcript joins all of the turns' transcripts.

Works against any Realtime server speaking the GA dialect: Parley, or OpenAI with ``--api-key`` and a URL that
names the model.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr
import websockets

from .wer import corpus_wer

DEFAULT_FOLDERS = ("commands_en", "ljspeech_en", "pocketsphinx_en")
INSTRUCTIONS = "Answer in one short sentence."
RATE = 24_000
FRAME_MS = 20
BYTES_PER_MS = RATE * 2 // 1000
FRAME_BYTES = FRAME_MS * BYTES_PER_MS
LEAD_MS = 300
TAIL_MS = 2000
# After the response, how long a session stays open for input transcripts still on their way (a server may
# transcribe alongside the response rather than before it).
TRANSCRIPT_GRACE_S = 5.0

# Stages shown in the split, in the order a turn goes through them; times are from the end of the recording.
STAGES = {
    "speech_stopped": "input_audio_buffer.speech_stopped",
    "committed": "input_audio_buffer.committed",
    "response.created": "response.created",
    "transcript": "conversation.item.input_audio_transcription.completed",
    "output_item.added": "response.output_item.added",
    "first audio": "response.output_audio.delta",
    "response.done": "response.done",
}
_FIRST_ONLY = {  # delta events: only the first of each response goes in the timeline
    "response.output_audio.delta",
    "response.output_audio_transcript.delta",
    "response.output_text.delta",
    "conversation.item.input_audio_transcription.delta",
}


@dataclass(frozen=True)
class Utterance:
    id: str
    folder: str
    audio: Path
    text: str
    lang: str
    duration_s: float


@dataclass
class Result:
    id: str
    folder: str
    text: str
    lang: str
    duration_s: float
    voice_to_voice_ms: float | None = None
    speech_stopped_ms: float | None = None
    transcript: str | None = None
    turns: int = 0
    vad_end_offset_ms: float | None = None
    """``audio_end_ms`` of the last ``speech_stopped`` minus where the recording ends in the stream."""
    answer: str | None = None
    answer_audio_ms: float = 0.0
    response_status: str | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)
    timeline: list[tuple[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.voice_to_voice_ms is not None


# Recordings ---------------------------------------------------------------------------------------------


def shared_dir() -> Path:
    """The team's shared folder: ``$PARLEY_SHARED_DIR``, else ``shared`` beside the repository."""
    if env := os.environ.get("PARLEY_SHARED_DIR"):
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared"


def speech_folder(name: str) -> Path:
    return shared_dir() / "speech" / name


def default_sources() -> list[Path]:
    return [speech_folder(name) for name in DEFAULT_FOLDERS]


def load_utterances(sources: Sequence[Path]) -> list[Utterance]:
    """Utterances of each source in order; a source is a ``manifest.jsonl`` or a folder that holds one."""
    utterances = []
    for source in sources:
        manifest = source / "manifest.jsonl" if source.is_dir() else source
        if not manifest.is_file():
            raise FileNotFoundError(f"no speech manifest at {manifest} (set PARLEY_SHARED_DIR?)")
        for line in manifest.read_text().splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            utterances.append(
                Utterance(
                    id=entry["id"],
                    folder=manifest.parent.name,
                    audio=manifest.parent / entry["audio"],
                    text=entry["text"],
                    lang=entry.get("lang", "en"),
                    duration_s=float(entry.get("duration_s", 0.0)),
                )
            )
    return utterances


def load_pcm24(path: Path) -> bytes:
    """A 16-bit PCM WAV file as 24 kHz mono pcm16 (channels averaged)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * wav.getsampwidth()}-bit")
        channels, rate = wav.getnchannels(), wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    audio = samples.reshape(-1, channels).mean(axis=1).astype(np.float32) / 32768.0
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE, quality="HQ")
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()


# One session --------------------------------------------------------------------------------------------


class _Turn:
    """What the receiver has seen so far, in ``perf_counter`` seconds."""

    def __init__(self) -> None:
        self.end_at: float | None = None  # the frame with the recording's last sample left the client
        self.tail_sent = asyncio.Event()
        self.finished = asyncio.Event()  # the measured response is done (or failed)
        self.events: list[tuple[str, float, dict[str, Any]]] = []
        self.first_audio_at: float | None = None
        self.audio_response: str | None = None
        self.committed: list[str] = []
        self.transcripts: dict[str, str] = {}
        self.failed_transcripts: set[str] = set()
        self.answer_bytes = 0
        self.done: dict[str, Any] | None = None
        self.errors: list[str] = []


async def measure(
    url: str,
    utterance: Utterance,
    api_key: str | None = None,
    silence_duration_ms: int = 500,
    timeout_s: float = 30.0,
) -> Result:
    """Stream one utterance in a new session and time what comes back; failures end up in ``errors``."""
    result = Result(utterance.id, utterance.folder, utterance.text, utterance.lang, utterance.duration_s)
    turn = _Turn()
    pcm = b""
    try:
        pcm = load_pcm24(utterance.audio)
        budget = LEAD_MS / 1000 + len(pcm) / (BYTES_PER_MS * 1000) + timeout_s + 15
        async with asyncio.timeout(budget):
            await _session(url, api_key, pcm, silence_duration_ms, timeout_s, turn)
    except TimeoutError:
        turn.errors.append("timed out" if turn.end_at is None else f"no response.done within {timeout_s}s")
    except Exception as exc:
        turn.errors.append(f"{type(exc).__name__}: {exc}")
    _fill(result, turn, len(pcm))
    return result


async def _session(
    url: str, api_key: str | None, pcm: bytes, silence_duration_ms: int, timeout_s: float, turn: _Turn
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await _until(ws, "session.created")
        session = {
            "type": "realtime",
            "output_modalities": ["audio"],
            "instructions": INSTRUCTIONS,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": RATE},
                    "transcription": {"model": "whisper-1"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": silence_duration_ms},
                }
            },
        }
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        await _until(ws, "session.updated")
        sender = asyncio.create_task(_stream(ws, pcm, turn, timeout_s))
        receiver = asyncio.create_task(_receive(ws, turn))
        finished = asyncio.create_task(turn.finished.wait())
        wind_down = asyncio.create_task(_wind_down(turn))
        tasks = (sender, receiver, finished, wind_down)
        try:
            done, _ = await asyncio.wait({sender, receiver, finished}, return_when=asyncio.FIRST_COMPLETED)
            if finished not in done:
                for task in done:
                    task.result()  # the stream timed out or the connection failed: raise why
            # Done: close once 2 s of silence followed the speech and the transcripts are in (or late).
            await asyncio.wait({receiver, wind_down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _wind_down(turn: _Turn) -> None:
    await turn.tail_sent.wait()
    deadline = time.perf_counter() + TRANSCRIPT_GRACE_S
    while time.perf_counter() < deadline and any(
        item not in turn.transcripts and item not in turn.failed_transcripts for item in turn.committed
    ):
        await asyncio.sleep(0.05)


async def _until(ws: Any, event_type: str) -> None:
    while True:
        event = json.loads(await ws.recv())
        if event["type"] == "error":
            raise RuntimeError(f"server error before streaming: {event['error']}")
        if event["type"] == event_type:
            return


async def _stream(ws: Any, pcm: bytes, turn: _Turn, timeout_s: float) -> None:
    """Frames at real-time pace: lead silence, the recording, then silence until cancelled or timed out."""
    lead = bytes(LEAD_MS * BYTES_PER_MS)
    audio = lead + pcm
    last_frame = (len(audio) - 1) // FRAME_BYTES
    tail_frames = TAIL_MS // FRAME_MS
    silence = bytes(FRAME_BYTES)
    started = time.perf_counter()
    index = 0
    while True:
        delay = started + index * FRAME_MS / 1000 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = audio[index * FRAME_BYTES : (index + 1) * FRAME_BYTES]
        frame += silence[len(frame) :]
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(frame).decode()}))
        now = time.perf_counter()
        if index == last_frame:
            turn.end_at = now
        elif index == last_frame + tail_frames:
            turn.tail_sent.set()
        if turn.end_at is not None and now - turn.end_at > timeout_s:
            raise TimeoutError
        index += 1


async def _receive(ws: Any, turn: _Turn) -> None:
    """Record events until the session closes; ``finished`` is set when the response that spoke after the end
    of the recording is done."""
    seen_first: set[tuple[str, str]] = set()
    async for message in ws:
        now = time.perf_counter()
        event = json.loads(message)
        kind = event["type"]
        if kind in _FIRST_ONLY:
            key = (kind, event.get("response_id") or event.get("item_id") or "")
            if key in seen_first:
                if kind == "response.output_audio.delta" and event.get("response_id") == turn.audio_response:
                    turn.answer_bytes += len(base64.b64decode(event["delta"]))
                continue
            seen_first.add(key)
        turn.events.append((kind, now, event))
        if kind == "error":
            turn.errors.append(f"server error: {event.get('error')}")
        elif kind == "input_audio_buffer.committed":
            turn.committed.append(event["item_id"])
        elif kind == "conversation.item.input_audio_transcription.completed":
            turn.transcripts[event["item_id"]] = event.get("transcript", "")
        elif kind == "conversation.item.input_audio_transcription.failed":
            turn.failed_transcripts.add(event["item_id"])
            turn.errors.append(f"transcription failed: {event.get('error')}")
        elif kind == "response.output_audio.delta" and turn.end_at is not None and turn.audio_response is None:
            turn.first_audio_at = now
            turn.audio_response = event.get("response_id")
            turn.answer_bytes += len(base64.b64decode(event["delta"]))
        elif kind == "response.done" and turn.end_at is not None and turn.done is None:
            response = event["response"]
            if response.get("id") == turn.audio_response:
                turn.done = response
                turn.finished.set()
            elif turn.audio_response is None and response.get("status") != "cancelled":
                turn.done = response
                turn.errors.append(f"response {response.get('status')} without audio: {response.get('status_details')}")
                turn.finished.set()
    if not turn.finished.is_set():
        raise ConnectionError("the server closed the session before the response was done")


def _fill(result: Result, turn: _Turn, pcm_bytes: int) -> None:
    result.errors = turn.errors
    result.turns = sum(1 for kind, _, _ in turn.events if kind == "input_audio_buffer.speech_stopped")
    if turn.transcripts:
        order = [*turn.committed, *(item for item in turn.transcripts if item not in turn.committed)]
        texts = [turn.transcripts[item] for item in order if item in turn.transcripts]
        result.transcript = " ".join(text.strip() for text in texts).strip()
    if turn.done is not None:
        result.response_status = turn.done.get("status")
        result.answer = _answer_text(turn.done)
    result.answer_audio_ms = round(turn.answer_bytes / BYTES_PER_MS, 1)
    if turn.end_at is None:
        return
    end = turn.end_at
    result.timeline = [(kind, round((at - end) * 1000, 1)) for kind, at, _ in turn.events]
    if turn.first_audio_at is not None:
        result.voice_to_voice_ms = round((turn.first_audio_at - end) * 1000, 1)
    horizon = turn.first_audio_at if turn.first_audio_at is not None else float("inf")
    spoken_to = [e["item_id"] for k, at, e in turn.events if k == "input_audio_buffer.committed" and at <= horizon]
    for stage, kind in STAGES.items():
        if kind == "response.done":
            times = [at for k, at, e in turn.events if k == kind and e["response"] is turn.done]
        elif stage == "transcript":  # of the turn the response answers, even where it came after the audio
            times = [at for k, at, e in turn.events if k == kind and spoken_to and e["item_id"] == spoken_to[-1]]
        else:
            times = [at for k, at, e in turn.events if k == kind and at <= horizon and _ours(e, turn.audio_response)]
        if times:
            result.stages_ms[stage] = round((times[-1] - end) * 1000, 1)
    result.speech_stopped_ms = result.stages_ms.get("speech_stopped")
    stops = [e for k, at, e in turn.events if k == "input_audio_buffer.speech_stopped" and at <= horizon]
    if stops and "audio_end_ms" in stops[-1]:
        recording_end_ms = LEAD_MS + pcm_bytes / BYTES_PER_MS
        result.vad_end_offset_ms = round(stops[-1]["audio_end_ms"] - recording_end_ms, 1)


def _ours(event: dict[str, Any], response_id: str | None) -> bool:
    """Events that name a response count only for the measured one (when it is known)."""
    named = event.get("response_id") or (event.get("response") or {}).get("id")
    return response_id is None or named is None or named == response_id


def _answer_text(response: dict[str, Any]) -> str:
    parts = [
        part.get("transcript") or part.get("text") or ""
        for item in response.get("output") or []
        for part in item.get("content") or []
    ]
    return " ".join(p for p in parts if p)


# All utterances -----------------------------------------------------------------------------------------


async def run(
    url: str,
    utterances: Sequence[Utterance],
    api_key: str | None = None,
    silence_duration_ms: int = 500,
    timeout_s: float = 30.0,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    results = []
    for utterance in utterances:
        result = await measure(url, utterance, api_key, silence_duration_ms, timeout_s)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered)),
        "p95": round(_percentile(ordered, 0.95)),
        "max": round(ordered[-1]),
    }


def summary(results: Sequence[Result]) -> dict[str, Any]:
    """Counts, latency percentiles (ms) and word error rate over the sessions that completed."""
    ok = [r for r in results if r.ok]
    latency = _stats([r.voice_to_voice_ms for r in ok if r.voice_to_voice_ms is not None])
    stopped = _stats([r.speech_stopped_ms for r in ok if r.speech_stopped_ms is not None])
    stages = {stage: _stats([r.stages_ms[stage] for r in ok if stage in r.stages_ms]) for stage in STAGES}
    return {
        "utterances": len(results),
        "completed": len(ok),
        "errors": len(results) - len(ok),
        "voice_to_voice_ms": latency,
        "speech_stopped_ms": stopped,
        "stages_ms": stages,
        "vad_end_offset_ms": _stats([r.vad_end_offset_ms for r in ok if r.vad_end_offset_ms is not None]),
        "wer": _wer(ok),
        "missing_transcripts": sum(1 for r in ok if r.transcript is None),
        "split_turns": sum(1 for r in ok if r.turns > 1),
    }


def _wer(results: Sequence[Result]) -> float | None:
    if not results:
        return None
    languages = {r.lang for r in results}
    language = languages.pop() if len(languages) == 1 else "und"
    return round(corpus_wer([r.text for r in results], [r.transcript or "" for r in results], language), 4)


def _ms(value: float | None) -> str:
    return "-" if value is None else str(value)


def markdown(label: str, results: Sequence[Result]) -> str:
    """The headline row, the split by stage and a row per folder."""
    s = summary(results)
    v2v, wer = s["voice_to_voice_ms"], s["wer"]
    lines = [
        f"| {label} | utterances | errors | voice-to-voice p50 ms | p95 ms | max ms | speech_stopped p50 ms | WER |",
        "|---|---|---|---|---|---|---|---|",
        f"| all | {s['utterances']} | {s['errors']} | {_ms(v2v['p50'])} | {_ms(v2v['p95'])} | {_ms(v2v['max'])} | "
        f"{_ms(s['speech_stopped_ms']['p50'])} | {'-' if wer is None else f'{wer:.3f}'} |",
        "",
        "| stage, ms after the recording's last frame was sent | p50 | p95 | max |",
        "|---|---|---|---|",
    ]
    for stage, stats in s["stages_ms"].items():
        lines.append(f"| {stage} | {_ms(stats['p50'])} | {_ms(stats['p95'])} | {_ms(stats['max'])} |")
    lines += [
        "",
        "| folder | utterances | errors | voice-to-voice p50 ms | speech_stopped p50 ms "
        "| VAD end - recording end p50 ms | WER |",
        "|---|---|---|---|---|---|---|",
    ]
    for folder in dict.fromkeys(r.folder for r in results):
        f = summary([r for r in results if r.folder == folder])
        fwer = f["wer"]
        lines.append(
            f"| {folder} | {f['utterances']} | {f['errors']} | {_ms(f['voice_to_voice_ms']['p50'])} | "
            f"{_ms(f['speech_stopped_ms']['p50'])} | {_ms(f['vad_end_offset_ms']['p50'])} | "
            f"{'-' if fwer is None else f'{fwer:.3f}'} |"
        )
    return "\n".join(lines)


def report(results: Sequence[Result], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"settings": settings or {}, "summary": summary(results), "results": [asdict(r) for r in results]}
