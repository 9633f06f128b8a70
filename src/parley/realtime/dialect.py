"""The two wire dialects: GA (current) and beta (``OpenAI-Beta: realtime=v1``), chosen once per connection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"

# Internal event names are the GA ones; a beta connection renames these on the way out.
_BETA_NAMES = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
}

# Assistant content types differ between dialects; user content types are shared.
_BETA_CONTENT_TYPES = {"output_text": "text", "output_audio": "audio"}
_GA_CONTENT_TYPES = {beta: ga for ga, beta in _BETA_CONTENT_TYPES.items()}


class Dialect(StrEnum):
    GA = "ga"
    BETA = "beta"

    @classmethod
    def detect(cls, headers: Mapping[str, str], subprotocols: Iterable[str]) -> Dialect:
        """Beta when the beta header or subprotocol is present, GA otherwise (PROTOCOL.md §1.2)."""
        if "realtime=v1" in headers.get("openai-beta", "").replace(" ", "").lower():
            return cls.BETA
        return cls.BETA if BETA_SUBPROTOCOL in subprotocols else cls.GA

    def event_name(self, internal_name: str) -> str:
        return _BETA_NAMES.get(internal_name, internal_name) if self is Dialect.BETA else internal_name

    def content_type_out(self, internal_type: str) -> str:
        return _BETA_CONTENT_TYPES.get(internal_type, internal_type) if self is Dialect.BETA else internal_type

    @staticmethod
    def content_type_in(wire_type: str) -> str:
        """Accept either dialect's assistant content names and store the GA ones."""
        return _GA_CONTENT_TYPES.get(wire_type, wire_type)
