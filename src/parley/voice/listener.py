"""A session's input audio: bytes in the session's format in, turn decisions out.

The listener keeps the audio since the last commit twice: as received (for the committed item) and at
16 kHz (for the models), both positioned in milliseconds since the session's first input audio. Every call
that touches a model runs in the caller's worker thread: ``process`` is blocking.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..engines.speech import LISTEN_RATE, EndOfTurnModel, VoiceActivityModel
from ..realtime.session_config import AudioFormatName, TurnDetection
from . import audio as codec
from .turns import EndOfTurnQuestion, TurnEvent, TurnTracker

# While nobody speaks, only this much audio is kept (prefix padding needs some; the rest would only grow).
IDLE_KEEP_MS = 2000
# Smart Turn looks at most at the last 8 s of a turn.
END_OF_TURN_WINDOW_S = 8
# When each recent append arrived is kept this far back (in appends), to time turns from their last voice.
ARRIVALS_KEPT = 2000


@dataclass
class CommittedAudio:
    """A finished stretch of input: the item's bytes and the models' view of the same audio."""

    raw: bytes
    listen: np.ndarray  # float32 at 16 kHz
    start_ms: int
    end_ms: int


@dataclass
class ListenResult:
    events: list[TurnEvent] = field(default_factory=list)
    end_of_turn_checks: int = 0


class Listener:
    def __init__(
        self,
        audio_format: AudioFormatName,
        detection: TurnDetection | None,
        vad: VoiceActivityModel,
        end_of_turn: EndOfTurnModel | None,
        *,
        start_ms: int = 0,
        pause_ms: int | None = None,
    ) -> None:
        """``start_ms``: where this listener's audio begins in the session; ``pause_ms``: see TurnTracker."""
        self._vad = vad
        self._end_of_turn = end_of_turn
        self._frame = vad.frame_samples
        self._frame_ms = self._frame * 1000 // LISTEN_RATE
        self._vad_state = vad.new_state()
        self.format = audio_format
        self._decoder = codec.StreamDecoder(audio_format)
        self._resampler = codec.InputResampler(audio_format)
        self._raw = bytearray()
        self._listen_parts: list[np.ndarray] = []  # joined only when read: appends stay O(chunk)
        self._unframed = np.zeros(0, dtype=np.float32)
        self.start_ms = start_ms  # where the kept audio begins
        self._listened_samples = start_ms * LISTEN_RATE // 1000  # through the VAD since the session began
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=ARRIVALS_KEPT)  # (end_ms, monotonic time)
        self.tracker = TurnTracker(detection, self._frame_ms, pause_ms) if detection else None

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(codec.duration_ms(len(self._raw), self.format))

    def buffered_ms(self) -> float:
        return codec.duration_ms(len(self._raw), self.format)

    def process(self, data: bytes, received_at: float) -> ListenResult:
        """Take appended bytes (arrived at monotonic ``received_at``); run voice activity (and end-of-turn)
        detection over the new frames."""
        if self.tracker is not None and not self.tracker.in_speech:
            # Trim before adding, never after: a turn that ended in the last call has been committed since.
            self._forget_before(self.end_ms - IDLE_KEEP_MS)
        samples = self._decoder.decode(data)
        self._raw += data
        self._arrivals.append((self.end_ms, received_at))
        listen = self._resampler.process(samples)
        self._listen_parts.append(listen)
        result = ListenResult()
        if self.tracker is None:
            return result
        frames = np.concatenate([self._unframed, listen])
        usable = len(frames) - len(frames) % self._frame
        self._unframed = frames[usable:]
        for offset in range(0, usable, self._frame):
            probability = self._vad.speech_probability(frames[offset : offset + self._frame], self._vad_state)
            self._listened_samples += self._frame
            decision = self.tracker.feed(probability, self._listened_samples * 1000 // LISTEN_RATE)
            if isinstance(decision, EndOfTurnQuestion) and self._end_of_turn is not None:
                result.end_of_turn_checks += 1
                turn = self._listen_between(self.tracker.turn_start_ms, decision.audio_end_ms)
                decision = self.tracker.answer(self._end_of_turn.turn_complete_probability(turn))
            if isinstance(decision, TurnEvent):
                if decision.kind == "speech_started":
                    self._forget_before(decision.audio_ms)  # the turn's item starts at its prefix padding
                result.events.append(decision)
        return result

    def commit(self) -> CommittedAudio:
        """Everything kept since the last commit becomes one turn."""
        # The resampler holds back a few ms; without them the turn's last word could be clipped.
        tail = self._resampler.process(np.zeros(0, dtype=np.int16), last=True)
        self._listen_parts.append(tail)
        committed = CommittedAudio(bytes(self._raw), self._listen(), self.start_ms, self.end_ms)
        self.start_ms = committed.end_ms
        self._raw.clear()
        self._listen_parts = []
        return committed

    def clear(self) -> None:
        self.commit()

    def turn_so_far(self) -> np.ndarray:
        """A copy of the 16 kHz audio kept since the last commit (the turn in progress, with its padding)."""
        return self._listen().copy()

    def arrival_of(self, audio_ms: int) -> float | None:
        """When the append holding the audio at ``audio_ms`` arrived (monotonic), if it is still known."""
        for end_ms, received_at in self._arrivals:
            if end_ms >= audio_ms:
                return received_at
        return None

    def _listen(self) -> np.ndarray:
        """The kept 16 kHz audio as one array (joined once, then kept joined)."""
        if len(self._listen_parts) != 1:
            joined = np.concatenate(self._listen_parts) if self._listen_parts else np.zeros(0, dtype=np.float32)
            self._listen_parts = [joined]
        return self._listen_parts[0]

    def _listen_between(self, start_ms: int, end_ms: int) -> np.ndarray:
        first = max(0, (start_ms - self.start_ms) * LISTEN_RATE // 1000)
        last = max(first, (end_ms - self.start_ms) * LISTEN_RATE // 1000)
        window = self._listen()[first:last]
        return window[-END_OF_TURN_WINDOW_S * LISTEN_RATE :]

    def _forget_before(self, ms: int) -> None:
        drop_ms = ms - self.start_ms
        if drop_ms <= 0:
            return
        raw_bytes = drop_ms * codec.bytes_per_ms(self.format)
        del self._raw[:raw_bytes]
        self._listen_parts = [self._listen()[drop_ms * LISTEN_RATE // 1000 :]]
        self.start_ms += drop_ms
