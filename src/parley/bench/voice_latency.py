"""Voice-to-voice latency over the WebSocket, with real recorded speech streamed as a microphone would.

Each session asks for spoken answers ("Answer in one short sentence."), input transcription and the chosen turn
detection, in the GA or beta dialect, and opts in to Parley's per-turn timings (``?parley_timings=true``, which
other servers ignore). Its audio is one continuous stream of 20 ms ``input_audio_buffer.append`` frames of 24 kHz
pcm16 at real-time pace: 300 ms of silence, then for each of its utterances the recording followed by silence
until the answer is done (and, before a next utterance, until the answer has been heard out plus 1 s), and at least
2 s of silence after the last one, as an open microphone would send.

The clock: voice-to-voice latency runs from sending the 20 ms frame that holds the recording's last voiced sample
(found by VAD, see ``recordings``) to receiving the first audio delta of the answer. Every wire event is timed from
that same instant. Where the server sends ``parley.turn.timings``, its stages (ms from when it received that frame)
give the split by stage; otherwise the split comes from the wire events.

With ``concurrency`` N, N lanes run at once, lane i starting i x (mean recording length + 2 s) / N later, so turns
interleave; each lane opens its sessions one after the other. For every answer a simulated player starting at its
first audio byte tells whether the audio kept ahead of real time (``playback``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import playback
from .dialects import DIALECTS, TIMINGS_EVENT, DialectName, TurnDetection, with_timings
from .recordings import BYTES_PER_MS, Recording

FRAME_MS = 20
FRAME_BYTES = FRAME_MS * BYTES_PER_MS
LEAD_MS = 300
MIN_TAIL_MS = 2000
GAP_MS = 1000  # between an answer heard out and the next utterance
TRANSCRIPT_GRACE_S = 5.0  # how long a finished turn waits for input transcripts still on their way
CONNECT_RETRY_S = 30.0  # a peer with one session slot frees it a moment after the previous client left
ASSUMED_ANSWER_S = 2.0  # for staggering lanes: a turn lasts about its recording plus this


@dataclass(frozen=True)
class Options:
    url: str
    dialect: DialectName = "ga"
    api_key: str | None = None
    silence_ms: int = 200
    turn_detection: TurnDetection = "server_vad"
    concurrency: int = 1
    turns_per_session: int = 1
    """Utterances per session; 0 puts all of a lane's utterances in one session."""
    max_output_tokens: int | None = 100
    """A cap on each answer, as a voice agent sets one: a small model that rambles for minutes would otherwise
    load the machine for the turns after it."""
    timeout_s: float = 30.0
    timings: bool = True


@dataclass
class TurnResult:
    id: str
    folder: str
    text: str
    lang: str
    duration_s: float
    session: int
    voiced_end_ms: float
    """The last voiced sample, from the start of the recording."""
    voiced_stream_ms: float = 0.0
    """The last voiced sample, from the start of the session's audio (the server's clock for ``audio_end_ms``)."""
    voice_to_voice_ms: float | None = None
    transcript: str | None = None
    vad_turns: int = 0
    vad_end_offset_ms: float | None = None
    """``audio_end_ms`` of the server's last ``speech_stopped`` minus ``voiced_stream_ms``."""
    answer: str | None = None
    answer_audio_ms: float = 0.0
    response_status: str | None = None
    underrun_ms: float | None = None
    wire_stages_ms: dict[str, float] = field(default_factory=dict)
    server_stages_ms: dict[str, float | None] | None = None
    server_audio_end_ms: int | None = None
    speculative: bool | None = None
    timeline: list[tuple[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.voice_to_voice_ms is not None


@dataclass
class SessionResult:
    index: int
    lane: int
    utterances: list[str]
    started_s: float = 0.0
    """When the session started streaming, from the start of the run."""
    send_lag_max_ms: float = 0.0
    """How late the benchmark itself sent a frame at worst: above a few ms, the client could not keep pace."""
    underrun_max_ms: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def fell_behind(self) -> bool:
        return playback.fell_behind(self.underrun_max_ms)


@dataclass
class Run:
    options: Options
    turns: list[TurnResult]
    sessions: list[SessionResult]
    stagger_s: float
    wall_s: float


# Wire stages, timed from the last voiced frame: the last of each kind before the first audio of the answer.
WIRE_STAGES = {
    "speech_stopped": "input_audio_buffer.speech_stopped",
    "committed": "input_audio_buffer.committed",
    "response.created": "response.created",
    "transcript": "conversation.item.input_audio_transcription.completed",
    "first text": "audio_transcript_delta",  # the dialect's name for it
    "first audio": "audio_delta",
    "response.done": "response.done",
}


# One turn, as the session sees it --------------------------------------------------------------------------


class _Turn:
    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.stream_start_ms = 0.0  # where the recording starts in the session's audio
        self.voiced_at: float | None = None  # perf_counter when the frame with the last voiced sample left
        self.ended_at: float | None = None  # ... the recording's last frame
        self.events: list[tuple[str, float, dict[str, Any]]] = []
        self.early_audio: set[str] = set()  # responses that began speaking before the speech ended
        self.audio_response: str | None = None
        self.first_audio_at: float | None = None
        self.deltas: list[tuple[float, float]] = []  # (arrival, audio ms) of the measured response
        self.committed: list[str] = []
        self.transcripts: dict[str, str] = {}
        self.failed_transcripts: set[str] = set()
        self.done: dict[str, Any] | None = None
        self.released_at: float | None = None  # the answer is done, or failed, or timed out
        self.errors: list[str] = []

    def release(self, now: float, error: str | None = None) -> None:
        if self.released_at is None:
            self.released_at = now
            if error:
                self.errors.append(error)

    def transcripts_in(self) -> bool:
        return all(item in self.transcripts or item in self.failed_transcripts for item in self.committed)

    @property
    def answer_ms(self) -> float:
        return sum(ms for _, ms in self.deltas)


class _Session:
    """One WebSocket session streaming its turns; the receiver files every event under the turn it belongs to."""

    def __init__(self, options: Options, recordings: Sequence[Recording]) -> None:
        self.options = options
        self.dialect = DIALECTS[options.dialect]
        self.turns = [_Turn(recording) for recording in recordings]
        self.current: _Turn | None = None
        self.item_turn: dict[str, _Turn] = {}
        self.timings: dict[str, dict[str, Any]] = {}  # response id -> parley.turn.timings
        self.send_lag_max_s = 0.0
        self.errors: list[str] = []

    async def run(self) -> None:
        options = self.options
        url = with_timings(options.url) if options.timings else options.url
        ws = await _connect(url, self.dialect.headers(options.api_key))
        try:
            update = self.dialect.session_update(options.turn_detection, options.silence_ms, options.max_output_tokens)
            await ws.send(json.dumps(update))
            await _until(ws, "session.updated")
            receiver = asyncio.create_task(self._receive(ws))
            sender = asyncio.create_task(self._stream(ws))
            try:
                done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # the connection failed: raise why
            finally:
                for task in (sender, receiver):
                    task.cancel()
                await asyncio.gather(sender, receiver, return_exceptions=True)
        finally:
            await ws.close()

    async def _stream(self, ws: Any) -> None:
        """Frames at real-time pace until every turn is over; returns when the session can close."""
        started = time.perf_counter()
        index = 0

        async def send(frame: bytes) -> float:
            nonlocal index
            due = started + index * FRAME_MS / 1000
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            self.send_lag_max_s = max(self.send_lag_max_s, time.perf_counter() - due)
            frame += bytes(FRAME_BYTES - len(frame))
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": _b64(frame)}))
            index += 1
            return time.perf_counter()

        silence = bytes(FRAME_BYTES)
        for _ in range(LEAD_MS // FRAME_MS):
            await send(silence)
        for number, turn in enumerate(self.turns):
            pcm = turn.recording.pcm
            turn.stream_start_ms = index * FRAME_MS
            voiced_frame = max(0, round(turn.recording.voiced_end_ms * BYTES_PER_MS) - 1) // FRAME_BYTES
            last_frame = (len(pcm) - 1) // FRAME_BYTES
            self.current = turn
            for frame in range(last_frame + 1):
                sent = await send(pcm[frame * FRAME_BYTES : (frame + 1) * FRAME_BYTES])
                if frame == voiced_frame:
                    turn.voiced_at = sent
            turn.ended_at = time.perf_counter()
            last = number == len(self.turns) - 1
            while not self._over(turn, last):
                await send(silence)

    def _over(self, turn: _Turn, last: bool) -> bool:
        """Whether the microphone may move on from ``turn`` (to the next utterance, or to closing)."""
        now = time.perf_counter()
        assert turn.voiced_at is not None and turn.ended_at is not None
        if turn.released_at is None:
            timeout = self.options.timeout_s
            if turn.first_audio_at is None and now - turn.voiced_at > timeout:
                turn.release(now, f"no answer within {timeout:g} s of the end of speech")
            elif turn.first_audio_at is not None and now > turn.first_audio_at + turn.answer_ms / 1000 + timeout:
                turn.release(now, f"the answer was not done {timeout:g} s after its audio would have played out")
            return False
        if now - turn.ended_at < MIN_TAIL_MS / 1000:
            return False
        if not turn.transcripts_in() and now - turn.released_at < TRANSCRIPT_GRACE_S:
            return False
        if last or turn.first_audio_at is None:
            return True
        return now >= turn.first_audio_at + (turn.answer_ms + GAP_MS) / 1000

    async def _receive(self, ws: Any) -> None:
        audio_delta = self.dialect.audio_delta
        first_seen: set[tuple[str, str]] = set()
        async for message in ws:
            now = time.perf_counter()
            event = json.loads(message)
            kind = event.get("type", "")
            item = event.get("item_id")
            turn = self.item_turn.get(item, self.current) if item else self.current
            if turn is None:
                if kind == "error":
                    self.errors.append(f"server error: {event.get('error')}")
                continue
            if kind == audio_delta:
                self._audio(turn, event, now)
            if kind in (audio_delta, self.dialect.audio_transcript_delta, self.dialect.text_delta):
                key = (kind, event.get("response_id", ""))
                if key in first_seen:
                    continue  # only the first delta of each kind and response goes into the timeline
                first_seen.add(key)
            turn.events.append((kind, now, event))
            if kind == "error":
                turn.errors.append(f"server error: {event.get('error')}")
            elif kind == "input_audio_buffer.committed" and item:
                turn.committed.append(item)
                self.item_turn[item] = turn
            elif kind == "conversation.item.input_audio_transcription.completed" and item:
                turn.transcripts[item] = event.get("transcript", "")
            elif kind == "conversation.item.input_audio_transcription.failed" and item:
                turn.failed_transcripts.add(item)
                turn.errors.append(f"transcription failed: {event.get('error')}")
            elif kind == TIMINGS_EVENT and event.get("response_id"):
                self.timings[event["response_id"]] = event
            elif kind == "response.done":
                self._done(turn, event.get("response") or {}, now)
        raise ConnectionError("the server closed the session before it was over")

    def _audio(self, turn: _Turn, event: dict[str, Any], now: float) -> None:
        response = event.get("response_id", "")
        audio_ms = _b64_len(event.get("delta", "")) / BYTES_PER_MS
        if response == turn.audio_response:
            turn.deltas.append((now, audio_ms))
        elif turn.audio_response is None and response not in turn.early_audio:
            if turn.voiced_at is None:
                turn.early_audio.add(response)
            else:
                turn.audio_response, turn.first_audio_at = response, now
                turn.deltas.append((now, audio_ms))

    def _done(self, turn: _Turn, response: dict[str, Any], now: float) -> None:
        if turn.voiced_at is None or turn.released_at is not None:
            return
        status = response.get("status")
        if response.get("id") == turn.audio_response:
            turn.done = response
            turn.release(now)
        elif turn.audio_response is None and response.get("id") not in turn.early_audio and status != "cancelled":
            turn.done = response
            turn.release(now, f"response {status} without audio: {response.get('status_details')}")

    def results(self, index: int) -> list[TurnResult]:
        return [self._result(turn, index) for turn in self.turns]

    def _result(self, turn: _Turn, index: int) -> TurnResult:
        recording = turn.recording
        u = recording.utterance
        result = TurnResult(u.id, u.folder, u.text, u.lang, u.duration_s, index, round(recording.voiced_end_ms, 1))
        result.voiced_stream_ms = round(turn.stream_start_ms + recording.voiced_end_ms, 1)
        result.errors = list(turn.errors)
        if turn.early_audio and turn.audio_response is None:
            result.errors.append("the server answered before the end of the speech, and not after it")
        result.vad_turns = sum(1 for kind, _, _ in turn.events if kind == "input_audio_buffer.speech_stopped")
        if turn.transcripts:
            order = [*turn.committed, *(item for item in turn.transcripts if item not in turn.committed)]
            result.transcript = " ".join(turn.transcripts[i].strip() for i in order if i in turn.transcripts).strip()
        if turn.done is not None:
            result.response_status = turn.done.get("status")
            result.answer = _answer_text(turn.done)
        result.answer_audio_ms = round(turn.answer_ms, 1)
        if turn.voiced_at is None:
            result.errors.append("the session ended before the utterance was sent")
            return result
        start = turn.voiced_at
        result.timeline = [(kind, round((at - start) * 1000, 1)) for kind, at, _ in turn.events]
        if turn.first_audio_at is not None:
            result.voice_to_voice_ms = round((turn.first_audio_at - start) * 1000, 1)
            result.underrun_ms = playback.underrun_ms(turn.deltas)
        result.wire_stages_ms = self._wire_stages(turn)
        stops = [e for kind, at, e in turn.events if kind == "input_audio_buffer.speech_stopped" and _before(at, turn)]
        if stops and isinstance(stops[-1].get("audio_end_ms"), int | float):
            result.vad_end_offset_ms = round(stops[-1]["audio_end_ms"] - result.voiced_stream_ms, 1)
        if (timings := self.timings.get(turn.audio_response or "")) is not None:
            stages = timings.get("stages_ms") or {}
            result.server_stages_ms = {k: None if v is None else round(float(v), 1) for k, v in stages.items()}
            result.server_audio_end_ms = timings.get("audio_end_ms")
            result.speculative = timings.get("speculative")
        return result

    def _wire_stages(self, turn: _Turn) -> dict[str, float]:
        names = {"audio_delta": self.dialect.audio_delta, "audio_transcript_delta": self.dialect.audio_transcript_delta}
        assert turn.voiced_at is not None
        answered = [
            e["item_id"] for k, at, e in turn.events if k == "input_audio_buffer.committed" and _before(at, turn)
        ]
        stages = {}
        for stage, kind in WIRE_STAGES.items():
            kind = names.get(kind, kind)
            if stage == "transcript":  # of the turn the answer is to, even where it came after the audio
                times = [at for k, at, e in turn.events if k == kind and answered and e.get("item_id") == answered[-1]]
            elif kind == "response.done":
                times = [at for k, at, e in turn.events if k == kind and e.get("response") is turn.done]
            elif kind in (names["audio_delta"], names["audio_transcript_delta"], "response.created"):
                times = [at for k, at, e in turn.events if k == kind and _response_id(e) == turn.audio_response]
            else:
                times = [at for k, at, e in turn.events if k == kind and _before(at, turn)]
            if times:
                stages[stage] = round((times[-1] - turn.voiced_at) * 1000, 1)
        return stages


def _before(at: float, turn: _Turn) -> bool:
    return turn.first_audio_at is None or at <= turn.first_audio_at


def _response_id(event: dict[str, Any]) -> str | None:
    return event.get("response_id") or (event.get("response") or {}).get("id")


def _answer_text(response: dict[str, Any]) -> str:
    parts = [
        part.get("transcript") or part.get("text") or ""
        for item in response.get("output") or []
        for part in item.get("content") or []
    ]
    return " ".join(p for p in parts if p)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64_len(text: str) -> int:
    """Decoded length of base64 ``text`` without decoding it (answers carry a lot of audio)."""
    return len(text) * 3 // 4 - text[-2:].count("=") if text else 0


async def _connect(url: str, headers: dict[str, str]) -> Any:
    """A connection that has said ``session.created``, retrying a server that is busy or not up yet."""
    deadline = time.perf_counter() + CONNECT_RETRY_S
    while True:
        try:
            ws = await websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=10)
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403, 404) or time.perf_counter() > deadline:
                raise
        except (OSError, InvalidHandshake, TimeoutError):
            if time.perf_counter() > deadline:
                raise
        else:
            try:
                async with asyncio.timeout(10):
                    await _until(ws, "session.created")
                return ws
            except (ConnectionClosed, TimeoutError, RuntimeError):
                await ws.close()
                if time.perf_counter() > deadline:
                    raise
        await asyncio.sleep(0.5)


async def _until(ws: Any, event_type: str) -> None:
    while True:
        event = json.loads(await ws.recv())
        if event["type"] == "error":
            raise RuntimeError(f"server error before streaming: {event['error']}")
        if event["type"] == event_type:
            return


# All utterances -------------------------------------------------------------------------------------------


def lanes(recordings: Sequence[Recording], options: Options) -> list[list[list[Recording]]]:
    """Round-robin the recordings over ``concurrency`` lanes, then cut each lane into sessions."""
    result = []
    for lane in range(options.concurrency):
        mine = list(recordings[lane :: options.concurrency])
        size = options.turns_per_session or max(1, len(mine))
        result.append([mine[i : i + size] for i in range(0, len(mine), size)])
    return result


def stagger_s(recordings: Sequence[Recording], concurrency: int) -> float:
    if concurrency <= 1 or not recordings:
        return 0.0
    mean_s = statistics.mean(r.duration_ms for r in recordings) / 1000
    return round((mean_s + ASSUMED_ANSWER_S) / concurrency, 3)


async def run(
    recordings: Sequence[Recording], options: Options, on_turn: Callable[[TurnResult], None] | None = None
) -> Run:
    stagger = stagger_s(recordings, options.concurrency)
    plan = lanes(recordings, options)
    sessions: list[SessionResult] = []
    turns: list[TurnResult] = []
    started = time.perf_counter()

    async def lane(number: int, lane_sessions: list[list[Recording]]) -> None:
        await asyncio.sleep(number * stagger)
        for batch in lane_sessions:
            record = SessionResult(len(sessions), number, [r.utterance.id for r in batch])
            sessions.append(record)
            record.started_s = round(time.perf_counter() - started, 3)
            session = _Session(options, batch)
            # Generous: each turn may wait for its answer, then for the answer to play out (up to a minute).
            budget = sum(r.duration_ms for r in batch) / 1000 + len(batch) * (2 * options.timeout_s + 75) + 60
            try:
                async with asyncio.timeout(budget):
                    await session.run()
            except TimeoutError:
                record.errors.append(f"session did not finish within {budget:.0f} s")
            except Exception as exc:
                record.errors.append(f"{type(exc).__name__}: {exc}")
            record.errors += session.errors
            record.send_lag_max_ms = round(session.send_lag_max_s * 1000, 1)
            results = session.results(record.index)
            for result in results:
                if record.errors and not result.ok:
                    result.errors += record.errors
            record.underrun_max_ms = max((r.underrun_ms or 0.0 for r in results), default=0.0)
            for result in results:
                turns.append(result)
                if on_turn is not None:
                    on_turn(result)

    await asyncio.gather(*(lane(number, batch) for number, batch in enumerate(plan)))
    order = {r.utterance.id + r.utterance.folder: i for i, r in enumerate(recordings)}
    turns.sort(key=lambda t: order.get(t.id + t.folder, 0))
    return Run(options, turns, sessions, stagger, round(time.perf_counter() - started, 1))
