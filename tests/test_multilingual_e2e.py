"""Multilingual voice turns end to end (default profile: Whisper base, Qwen2.5-0.5B, Kokoro): real French and
Portuguese recordings streamed at real-time pace; the answer is spoken in the caller's language, which the
test checks by transcribing the answer's audio back with the project's own recognizer."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
import pytest
import soxr

from parley.bench.wer import wer
from parley.engines.speech import LISTEN_RATE
from parley.engines.whisper import BASE, WhisperRecognizer, load_recognizer
from parley.voice import audio as codec
from tests.support.client import RecordingConnection, connect
from tests.support.server import RunningServer
from tests.support.speech import Utterance, silence, stream, utterance

INSTRUCTIONS = "You are a friendly voice assistant. Answer in one short sentence."
# Each spoken answer stays a few seconds long: Kokoro on two shared cores is the slow part of these tests.
ANSWER_TOKENS = 40
TURN_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def recognizer() -> WhisperRecognizer:
    return load_recognizer(BASE)


def _session(silence_ms: int) -> dict[str, Any]:
    fmt = {"type": "audio/pcm", "rate": 24000}
    detection = {"type": "server_vad", "silence_duration_ms": silence_ms}
    return {
        "type": "realtime",
        "instructions": INSTRUCTIONS,
        "output_modalities": ["audio"],
        "max_output_tokens": ANSWER_TOKENS,
        "audio": {
            # No transcription language: Whisper detects the caller's language on every turn.
            "input": {"format": fmt, "transcription": {"model": "whisper-1"}, "turn_detection": detection},
            "output": {"format": fmt, "voice": "alloy"},
        },
    }


async def _spoken_turn(
    server: RunningServer, spoken: Utterance, silence_ms: int
) -> tuple[RecordingConnection, dict[str, Any], str]:
    """Stream ``spoken`` into a new session without a knowledge base; the response and the server log of it."""
    mark = len(server.log())
    async with connect(server, "ga", speak=True, knowledge="") as conn:
        await conn.send({"type": "session.update", "session": _session(silence_ms)})
        await conn.until("session.updated")
        samples = np.concatenate([silence(300), spoken.samples(24_000), silence(silence_ms + 2500)])
        sender = asyncio.create_task(stream(conn, samples))
        try:
            response = (await conn.until("response.done", TURN_TIMEOUT_S))["response"]
        finally:
            sender.cancel()
        conn.assert_conformant()
    return conn, response, server.log()[mark:]


def _answer_audio(events: list[dict[str, Any]], response_id: str) -> np.ndarray:
    """The answer's pcm16 at 24 kHz, as float samples at the recognizer's 16 kHz."""
    data = b"".join(
        base64.b64decode(e["delta"])
        for e in events
        if e["type"] == "response.output_audio.delta" and e["response_id"] == response_id
    )
    samples = codec.decode(data, "pcm16").astype(np.float32) / 32768
    return soxr.resample(samples, 24_000, LISTEN_RATE).astype(np.float32)


def _check(
    conn: RecordingConnection,
    response: dict[str, Any],
    log: str,
    spoken: Utterance,
    recognizer: WhisperRecognizer,
    speaking: str,
) -> None:
    heard = next(e for e in conn.events if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert wer(spoken.text, heard["transcript"]) <= 0.5, heard["transcript"]
    # The caller's language, as detected, picked the voice: logged when the response's speaker is made.
    assert speaking in log, log[-2000:]
    assert response["status"] in {"completed", "incomplete"}, response["status_details"]
    transcript = response["output"][0]["content"][0]["transcript"]
    audio = _answer_audio(conn.events, response["id"])
    assert len(audio) > 0.5 * LISTEN_RATE, transcript
    back = recognizer.transcribe(audio)  # no language given: Whisper detects it
    print(f"{spoken.id}: heard {heard['transcript']!r}, answered {transcript!r}, answer heard as {back}")
    assert back.language == spoken.language, (transcript, back)
    assert wer(transcript, back.text) <= 0.6, (transcript, back.text)  # the audio says what the text says


async def test_french_request_is_answered_in_french_speech(
    default_server: RunningServer, recognizer: WhisperRecognizer
) -> None:
    spoken = utterance("commands_fr", "fr-combien_fait_il_dans_le_Salon")
    conn, response, log = await _spoken_turn(default_server, spoken, 500)
    _check(conn, response, log, spoken, recognizer, "speaking fr: kokoro voice ff_siwis")


async def test_portuguese_request_is_answered_in_portuguese_speech(
    default_server: RunningServer, recognizer: WhisperRecognizer
) -> None:
    # A read sentence (9 s) with pauses between phrases: a longer silence ends the turn.
    spoken = utterance("fleurs_pt", "pt-007")
    conn, response, log = await _spoken_turn(default_server, spoken, 1200)
    _check(conn, response, log, spoken, recognizer, "speaking pt-br: kokoro voice pf_dora")


def test_portuguese_with_english_terms_is_not_forced_into_one_language(recognizer: WhisperRecognizer) -> None:
    """The shared recordings hold no turn that switches language mid-sentence; the nearest is a Portuguese
    sentence with the English term "scaffolding". Without a language Whisper detects Portuguese and keeps the
    sentence (the English term comes out as heard, "Sky Folding"); forced to English it would translate."""
    spoken = utterance("fleurs_pt", "pt-004")
    audio = spoken.samples(LISTEN_RATE).astype(np.float32) / 32768
    detected = recognizer.transcribe(audio)
    assert detected.language == "pt"
    assert wer(spoken.text, detected.text) <= 0.25, detected.text
    forced = recognizer.transcribe(audio, language="en")
    assert wer(spoken.text, forced.text) > 0.5, forced.text
