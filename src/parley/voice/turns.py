"""Turn-taking decisions from per-frame speech probabilities: when a turn starts, and when it has ended.

Pure logic, fed one VAD frame at a time with the time the frame ends (ms since the session's first audio);
it returns what happened. ``server_vad`` ends a turn after ``silence_duration_ms`` of silence. ``semantic_vad``
asks the end-of-turn model at each pause whether the speaker is done, and waits longer when they are not,
up to a ceiling that depends on ``eagerness``.

Before a turn ends, a short pause is reported as ``pause`` (the turn may be over: work on an answer can start)
and speech after it as ``resumed`` (it was not: that work is dropped). Neither is a wire event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..realtime.session_config import TurnDetection

# Consecutive voiced frames that open a turn (about 64 ms): a click or a breath is not a turn.
MIN_SPEECH_FRAMES = 2
# Inside a turn, a frame counts as silence only below the threshold minus this margin (hysteresis keeps a turn
# open through the dips inside words and through soft word endings).
SILENCE_HYSTERESIS = 0.15

# semantic_vad: the pause after which the end-of-turn model is first asked, how often it is asked again,
# the probability it must give, and the longest pause before the turn ends anyway.
_SEMANTIC = {
    "high": (160, 0.35, 2000),
    "medium": (200, 0.5, 4000),
    "low": (300, 0.7, 8000),
}
SEMANTIC_RECHECK_MS = 250
# Audio kept before the detected start of speech when the turn detection names no prefix_padding_ms: the first
# sound of a word is quieter than the VAD's threshold, and a recognizer given the turn without it mishears the
# word ("ancel timer").
DEFAULT_PREFIX_PADDING_MS = 300


@dataclass(frozen=True)
class TurnEvent:
    kind: Literal["speech_started", "speech_stopped", "pause", "resumed"]
    audio_ms: int


@dataclass(frozen=True)
class EndOfTurnQuestion:
    """semantic_vad wants the end-of-turn model's opinion on the audio up to ``audio_end_ms``."""

    audio_end_ms: int


class TurnTracker:
    def __init__(self, detection: TurnDetection, frame_ms: int, pause_ms: int | None = None) -> None:
        """``pause_ms``: silence after which a ``pause`` is reported (None: never)."""
        self._detection = detection
        self._pause_after_ms = pause_ms
        self._paused = False
        self._frame_ms = frame_ms
        self._threshold = detection.threshold if detection.threshold is not None else 0.5
        self._voiced_run = 0
        self.in_speech = False
        self.turn_start_ms = 0
        self.last_voice_ms = 0
        self._next_question_ms: int | None = None
        eagerness = detection.eagerness if detection.eagerness not in (None, "auto") else "medium"
        self._first_pause_ms, self.semantic_threshold, self._max_pause_ms = _SEMANTIC[eagerness]

    @property
    def semantic(self) -> bool:
        return self._detection.type == "semantic_vad"

    def feed(self, probability: float, frame_end_ms: int) -> TurnEvent | EndOfTurnQuestion | None:
        frame_start_ms = frame_end_ms - self._frame_ms
        # Silero's own rule: speech starts at the threshold and goes on until it falls below the threshold minus
        # the hysteresis, so the soft end of a last word ("mind" in "never mind") still belongs to the turn.
        goes_on = self.in_speech and probability >= self._threshold - SILENCE_HYSTERESIS
        if probability >= self._threshold or goes_on:
            self._voiced_run += 1
            if self.in_speech:
                self.last_voice_ms = frame_end_ms
                self._next_question_ms = None
                if self._paused:
                    self._paused = False
                    return TurnEvent("resumed", frame_end_ms)
                return None
            if self._voiced_run >= MIN_SPEECH_FRAMES:
                onset = frame_start_ms - (MIN_SPEECH_FRAMES - 1) * self._frame_ms
                padding = self._detection.prefix_padding_ms
                if padding is None:  # semantic_vad has no such setting: keep what server_vad keeps by default
                    padding = DEFAULT_PREFIX_PADDING_MS
                self.in_speech = True
                self.turn_start_ms = max(0, onset - padding)
                self.last_voice_ms = frame_end_ms
                return TurnEvent("speech_started", self.turn_start_ms)
            return None
        self._voiced_run = 0
        if not self.in_speech:
            return None
        pause_ms = frame_end_ms - self.last_voice_ms
        if not self.semantic:
            if pause_ms >= (self._detection.silence_duration_ms or 0):
                return self._stop()
            return self._maybe_pause(pause_ms)
        if pause_ms >= self._max_pause_ms:
            return self._stop()
        if pause_ms >= self._first_pause_ms and (
            self._next_question_ms is None or frame_end_ms >= self._next_question_ms
        ):
            self._next_question_ms = frame_end_ms + SEMANTIC_RECHECK_MS
            return EndOfTurnQuestion(frame_end_ms)
        return self._maybe_pause(pause_ms)

    def _maybe_pause(self, pause_ms: int) -> TurnEvent | None:
        if self._paused or self._pause_after_ms is None or pause_ms < self._pause_after_ms:
            return None
        self._paused = True
        return TurnEvent("pause", self.last_voice_ms)

    def answer(self, complete_probability: float) -> TurnEvent | None:
        """The end-of-turn model's answer to the last question: stop the turn if it is confident."""
        if self.in_speech and complete_probability >= self.semantic_threshold:
            return self._stop()
        return None

    def _stop(self) -> TurnEvent:
        self.in_speech = False
        self._paused = False
        self._voiced_run = 0
        self._next_question_ms = None
        return TurnEvent("speech_stopped", self.last_voice_ms)
