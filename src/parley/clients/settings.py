"""The session both clients ask for: audio in and out as 24 kHz pcm16, with the caller's words transcribed."""

from __future__ import annotations

from typing import Any

PCM = {"type": "audio/pcm", "rate": 24_000}


def voice_session(
    *,
    voice: str | None = None,
    instructions: str | None = None,
    max_output_tokens: int | None = None,
    turn_detection: str | None = None,
) -> dict[str, Any]:
    """A GA ``session.update`` payload; unset options keep the server's defaults. No turn detection means
    the client commits the audio itself."""
    output: dict[str, Any] = {"format": PCM}
    if voice:
        output["voice"] = voice
    session: dict[str, Any] = {
        "type": "realtime",
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": PCM,
                "transcription": {"model": "whisper-1"},
                "turn_detection": {"type": turn_detection} if turn_detection else None,
            },
            "output": output,
        },
    }
    if instructions:
        session["instructions"] = instructions
    if max_output_tokens:
        session["max_output_tokens"] = max_output_tokens
    return session
