"""What the voice benchmark says and listens for in each Realtime dialect (GA or beta)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DialectName = Literal["ga", "beta"]
TurnDetection = Literal["server_vad", "semantic_vad"]
INSTRUCTIONS = "Answer in one short sentence."
TIMINGS_QUERY = "parley_timings"
TIMINGS_EVENT = "parley.turn.timings"


@dataclass(frozen=True)
class Dialect:
    name: DialectName
    audio_delta: str
    audio_transcript_delta: str
    text_delta: str

    def headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if self.name == "beta":
            headers["OpenAI-Beta"] = "realtime=v1"
        return headers

    def session_update(
        self, turn_detection: TurnDetection, silence_ms: int, max_output_tokens: int | None = None
    ) -> dict[str, Any]:
        """Spoken answers, input transcription, 24 kHz pcm16 both ways, the chosen turn detection, and a cap on
        each answer's length (None: none)."""
        limit: int | str = max_output_tokens or "inf"
        detection: dict[str, Any] = {"type": turn_detection}
        if turn_detection == "server_vad":
            detection["silence_duration_ms"] = silence_ms
        if self.name == "beta":
            session: dict[str, Any] = {
                "modalities": ["audio", "text"],  # beta cannot ask for audio alone
                "instructions": INSTRUCTIONS,
                "input_audio_format": "pcm16",
                "output_audio_format": "pcm16",
                "input_audio_transcription": {"model": "whisper-1"},
                "turn_detection": detection,
                "max_response_output_tokens": limit,
            }
        else:
            pcm = {"type": "audio/pcm", "rate": 24_000}
            session = {
                "type": "realtime",
                "output_modalities": ["audio"],
                "instructions": INSTRUCTIONS,
                "max_output_tokens": limit,
                "audio": {
                    "input": {"format": pcm, "transcription": {"model": "whisper-1"}, "turn_detection": detection},
                    "output": {"format": pcm},
                },
            }
        return {"type": "session.update", "session": session}


DIALECTS: dict[DialectName, Dialect] = {
    "ga": Dialect(
        "ga", "response.output_audio.delta", "response.output_audio_transcript.delta", "response.output_text.delta"
    ),
    "beta": Dialect("beta", "response.audio.delta", "response.audio_transcript.delta", "response.text.delta"),
}


def with_timings(url: str) -> str:
    """``url`` asking Parley for its per-turn timings; servers that do not know the parameter ignore it."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != TIMINGS_QUERY]
    return urlunsplit(parts._replace(query=urlencode([*query, (TIMINGS_QUERY, "true")])))
