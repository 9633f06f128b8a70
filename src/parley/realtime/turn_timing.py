"""Where the time of a voice turn goes, from the person's last voiced audio to the answer's first audio.

Every stage is measured from the moment the server received the append holding the turn's last voiced sample,
so the stages add up to what the caller waits (minus the network). Sent to clients that opt in
(``parley_timings=true`` on the WebSocket URL) as a ``parley.turn.timings`` event before the turn's
``response.done``, and always observed as Prometheus histograms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..metrics import TURN_STAGE_SECONDS

STAGES = ("turn_detected", "transcript", "llm_first_token", "first_audio")
EVENT_TYPE = "parley.turn.timings"


@dataclass
class TurnTiming:
    item_id: str  # the user turn's item
    audio_end_ms: int  # the last voiced sample's position in the session's input audio
    voice_end_at: float  # monotonic time its append arrived
    turn_detected_at: float | None = None
    transcript_at: float | None = None
    llm_first_token_at: float | None = None
    first_audio_at: float | None = None
    speculative: bool = False  # the answer was prepared during a pause, before the turn was confirmed over

    def stages_ms(self) -> dict[str, float | None]:
        return {stage: self._since_voice_end(getattr(self, f"{stage}_at")) for stage in STAGES}

    def mark_first_audio(self) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = time.monotonic()

    def observe(self) -> None:
        for stage, ms in self.stages_ms().items():
            if ms is not None:
                TURN_STAGE_SECONDS.labels(stage).observe(max(ms, 0.0) / 1000)

    def event_fields(self, response_id: str) -> dict[str, Any]:
        return {
            "response_id": response_id,
            "item_id": self.item_id,
            "audio_end_ms": self.audio_end_ms,
            "stages_ms": self.stages_ms(),
            "speculative": self.speculative,
        }

    def _since_voice_end(self, at: float | None) -> float | None:
        return None if at is None else round((at - self.voice_end_at) * 1000, 1)
