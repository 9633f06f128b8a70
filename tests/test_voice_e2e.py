"""Voice turns end to end: real recordings streamed at real-time pace into a real server (fast profile)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np

from parley.bench.wer import wer
from parley.voice import audio as codec
from tests.support.client import RecordingConnection, connect, user_text
from tests.support.server import RunningServer
from tests.support.speech import silence, stream, utterance

ANSWER_BRIEFLY = "You are a voice assistant. Answer in one short sentence."
TURN_TIMEOUT_S = 120
# The small test model sometimes rambles on; a cap keeps each spoken answer to a few seconds.
ANSWER_TOKENS = 80
LONG_SENTENCE = "LJ001-0001"


def _session(turn_detection: dict[str, Any] | None, audio_format: str = "audio/pcm", **extra: Any) -> dict[str, Any]:
    fmt: dict[str, Any] = {"type": audio_format, **({"rate": 24000} if audio_format == "audio/pcm" else {})}
    return {
        "type": "realtime",
        "instructions": ANSWER_BRIEFLY,
        "output_modalities": ["audio"],
        "max_output_tokens": ANSWER_TOKENS,
        "audio": {
            "input": {"format": fmt, "transcription": {"model": "whisper-1"}, "turn_detection": turn_detection},
            "output": {"format": fmt, "voice": "alloy"},
        },
        **extra,
    }


async def _configure(conn: RecordingConnection, session: dict[str, Any]) -> int:
    await conn.send({"type": "session.update", "session": session})
    await conn.until("session.updated")
    return len(conn.events)


def _response_audio(events: list[dict[str, Any]], response_id: str, audio_format: str = "pcm16") -> np.ndarray:
    data = b"".join(
        base64.b64decode(e["delta"])
        for e in events
        if e["type"] == "response.output_audio.delta" and e["response_id"] == response_id
    )
    return codec.decode(data, audio_format).astype(np.float32)  # type: ignore[arg-type]


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples)))) if len(samples) else 0.0


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events if e["type"] not in {"response.output_audio.delta"}]


async def _voice_turn(conn: RecordingConnection, samples: np.ndarray, audio_format: str = "pcm16") -> dict[str, Any]:
    sender = asyncio.create_task(stream(conn, samples, audio_format))  # type: ignore[arg-type]
    try:
        return (await conn.until("response.done", TURN_TIMEOUT_S))["response"]
    finally:
        sender.cancel()


def _check_user_turn(events: list[dict[str, Any]], reference: str) -> str:
    """Started, stopped and committed name one item, in that order, and its transcript is close to the truth."""
    names = _types(events)
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    assert started["audio_start_ms"] < stopped["audio_end_ms"]
    order = [
        names.index(n)
        for n in (
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "response.created",
        )
    ]
    assert order == sorted(order), names
    completed = next(
        e for e in events
        if e["type"] == "conversation.item.input_audio_transcription.completed" and e["item_id"] == committed["item_id"]
    )  # fmt: skip
    assert completed["usage"]["type"] == "duration" and completed["usage"]["seconds"] > 0
    assert wer(reference, completed["transcript"]) <= 0.5, (reference, completed["transcript"])
    return completed["transcript"]


def _check_spoken_answer(events: list[dict[str, Any]], response: dict[str, Any], audio_format: str) -> None:
    # Complete, or stopped by the cap above; either way a whole spoken answer with its transcript.
    assert response["status"] == "completed" or response["status_details"] == {
        "type": "incomplete",
        "reason": "max_output_tokens",
    }, response["status_details"]
    assert response["output_modalities"] == ["audio"]
    content = response["output"][0]["content"][0]
    assert content["type"] == "output_audio" and "audio" not in content
    deltas = "".join(
        e["delta"] for e in events
        if e["type"] == "response.output_audio_transcript.delta" and e["response_id"] == response["id"]
    )  # fmt: skip
    assert content["transcript"] == deltas and deltas.strip()
    samples = _response_audio(events, response["id"], audio_format)
    rate = codec.SAMPLE_RATES[audio_format]  # type: ignore[index]
    seconds = len(samples) / rate
    assert seconds > 0.3
    assert _rms(samples) > 300  # speech, not silence (int16 scale)
    usage = response["usage"]
    # OpenAI's audio token rates: 20 per second of output audio.
    assert abs(usage["output_token_details"]["audio_tokens"] - seconds * 20) <= 2
    assert usage["input_token_details"]["audio_tokens"] > 0


async def test_server_vad_turn_pcm16(server: RunningServer) -> None:
    spoken = utterance("commands_en", "en-what_s_the_date")
    async with connect(server, "ga", speak=True) as conn:
        start = await _configure(conn, _session({"type": "server_vad", "silence_duration_ms": 500}))
        samples = np.concatenate([silence(300), spoken.samples(24_000), silence(3000)])
        response = await _voice_turn(conn, samples)
        events = conn.events[start:]
        _check_user_turn(events, spoken.text)
        _check_spoken_answer(events, response, "pcm16")
        # 10 input audio tokens per second of the committed turn.
        committed_ms = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")["audio_end_ms"]
        assert response["usage"]["input_token_details"]["audio_tokens"] <= committed_ms // 100 + 10
        conn.assert_conformant()


async def test_server_vad_turn_g711_ulaw(server: RunningServer) -> None:
    # A long sentence (about 10 s): the whole turn must reach the recognizer, not only its end. The reader
    # pauses at commas, so the silence that ends a turn is longer than those pauses.
    spoken = utterance("ljspeech_en", LONG_SENTENCE)
    async with connect(server, "ga", speak=True) as conn:
        start = await _configure(conn, _session({"type": "server_vad", "silence_duration_ms": 900}, "audio/pcmu"))
        samples = np.concatenate([silence(300), spoken.samples(24_000), silence(3000)])
        response = await _voice_turn(conn, samples, "g711_ulaw")
        events = conn.events[start:]
        _check_user_turn(events, spoken.text)
        _check_spoken_answer(events, response, "g711_ulaw")
        conn.assert_conformant()


async def test_semantic_vad_turn(server: RunningServer) -> None:
    spoken = utterance("commands_en", "en-what_s_the_date")
    async with connect(server, "ga", speak=True) as conn:
        start = await _configure(conn, _session({"type": "semantic_vad", "eagerness": "high"}))
        samples = np.concatenate([silence(300), spoken.samples(24_000), silence(3000)])
        response = await _voice_turn(conn, samples)
        events = conn.events[start:]
        _check_user_turn(events, spoken.text)
        _check_spoken_answer(events, response, "pcm16")
        conn.assert_conformant()


async def test_manual_commit_turn_beta(server: RunningServer) -> None:
    spoken = utterance("commands_en", "en-lock_the_Front_Door")
    async with connect(server, "beta", speak=True) as conn:
        session = {
            "modalities": ["audio", "text"],
            "instructions": ANSWER_BRIEFLY,
            "turn_detection": None,
            "input_audio_transcription": {"model": "whisper-1"},
            "max_response_output_tokens": ANSWER_TOKENS,
        }
        await conn.send({"type": "session.update", "session": session})
        await conn.until("session.updated")
        await stream(conn, spoken.samples(24_000), realtime=False)  # push-to-talk: pace does not matter
        await conn.send({"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
        committed = await conn.until("input_audio_buffer.committed")
        created = await conn.until("conversation.item.created")
        assert created["item"]["id"] == committed["item_id"]
        completed = await conn.until("conversation.item.input_audio_transcription.completed")
        assert wer(spoken.text, completed["transcript"]) <= 0.5, completed["transcript"]
        await conn.no_event_within(1.0)  # no VAD, no automatic response
        await conn.send({"type": "response.create"})
        response = (await conn.until("response.done", TURN_TIMEOUT_S))["response"]
        assert response["status"] in {"completed", "incomplete"}, response["status_details"]
        assert response["modalities"] == ["audio", "text"]
        audio = b"".join(
            base64.b64decode(e["delta"]) for e in conn.events if e["type"] == "response.audio.delta"
        )  # beta names
        assert len(audio) > 0.3 * 48_000
        conn.assert_conformant()


async def test_barge_in_cancels_and_truncation_keeps_what_was_heard(server: RunningServer) -> None:
    second = utterance("commands_en", "en-lock_the_Front_Door")
    async with connect(server, "ga", speak=True) as conn:
        # Automatic answers stay short (the small model can ramble for minutes); the story below may be long,
        # so that it is still being generated when the caller speaks again.
        session = _session({"type": "server_vad", "silence_duration_ms": 500, "interrupt_response": True})
        await _configure(conn, session)
        await conn.send(user_text("Write a very long story about a dragon, at least 500 words."))
        await conn.send({"type": "response.create", "response": {"max_output_tokens": 600}})
        created = (await conn.until("response.created", TURN_TIMEOUT_S))["response"]
        first_audio = await conn.until("response.output_audio.delta", TURN_TIMEOUT_S)
        interrupter = asyncio.create_task(stream(conn, np.concatenate([second.samples(24_000), silence(3000)])))
        done = (await conn.until("response.done", TURN_TIMEOUT_S))["response"]
        assert done["id"] == created["id"]
        assert done["status"] == "cancelled"
        assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
        assert done["output"][0]["status"] == "incomplete"
        done_at = next(i for i, e in enumerate(conn.events) if e["type"] == "response.done")
        barge_at = next(i for i, e in enumerate(conn.events) if e["type"] == "input_audio_buffer.speech_started")
        assert conn.events.index(first_audio) < barge_at < done_at
        leaked = [e for e in conn.events[done_at + 1 :] if e.get("response_id") == done["id"]]
        assert not leaked, "events of the cancelled response after its response.done"

        # The client played only part of the audio: it truncates the item to what was heard.
        item = done["output"][0]
        heard_audio = _response_audio(conn.events, done["id"])
        played_ms = len(heard_audio) * 1000 // 24_000 // 2
        full_transcript = item["content"][0]["transcript"]
        await conn.send({"type": "conversation.item.truncate", "item_id": item["id"], "content_index": 0,
                         "audio_end_ms": played_ms})  # fmt: skip
        truncated = await conn.until("conversation.item.truncated")
        assert truncated["audio_end_ms"] == played_ms
        await conn.send({"type": "conversation.item.retrieve", "item_id": item["id"]})
        kept = (await conn.until("conversation.item.retrieved"))["item"]["content"][0]
        assert len(base64.b64decode(kept["audio"])) == played_ms * 48
        assert full_transcript.startswith(kept["transcript"])
        assert len(kept["transcript"]) < len(full_transcript)
        # Out of range is refused, and the session goes on to answer the second turn.
        await conn.send({"type": "conversation.item.truncate", "event_id": "evt_far", "item_id": item["id"],
                         "content_index": 0, "audio_end_ms": played_ms + 60_000})  # fmt: skip
        error = await conn.expect_error("evt_far")
        assert error["param"] == "audio_end_ms"
        finished = [e["response"] for e in conn.events if e["type"] == "response.done"]
        while len(finished) < 2:
            finished.append((await conn.until("response.done", TURN_TIMEOUT_S))["response"])
        assert finished[1]["id"] != done["id"]
        interrupter.cancel()
        conn.assert_conformant(allow_open_responses=True)


async def test_idle_timeout_prompts_the_caller(server: RunningServer) -> None:
    """GA server_vad with idle_timeout_ms: after the answer has played and the caller stays silent, the
    session commits the silence and answers by itself."""
    async with connect(server, "ga", speak=True) as conn:
        await _configure(conn, _session({"type": "server_vad", "idle_timeout_ms": 5000}))
        await conn.send(user_text("Say hello."))
        await conn.send({"type": "response.create"})
        first = (await conn.until("response.done", TURN_TIMEOUT_S))["response"]
        answered_at = asyncio.get_running_loop().time()
        played_s = first["usage"]["output_token_details"]["audio_tokens"] / 20
        microphone = asyncio.create_task(stream(conn, silence(30_000)))  # the caller says nothing
        try:
            triggered = await conn.until("input_audio_buffer.timeout_triggered", 60)
            waited = asyncio.get_running_loop().time() - answered_at
            assert waited >= played_s + 5.0 - 0.5
            assert triggered["audio_end_ms"] > triggered["audio_start_ms"]
            committed = await conn.until("input_audio_buffer.committed")
            assert committed["item_id"] == triggered["item_id"]
            second = (await conn.until("response.done", TURN_TIMEOUT_S))["response"]
            assert second["id"] != first["id"]
        finally:
            microphone.cancel()
        conn.assert_conformant()


async def test_format_change_mid_stream_drops_the_old_audio_and_carries_on(server: RunningServer) -> None:
    """Half a turn in pcm16, then the session switches to μ-law: the buffered pcm16 is not mixed into the
    new format's audio; the next turn, in μ-law, is heard and answered."""
    half = utterance("commands_en", "en-what_s_the_date").samples(24_000)
    spoken = utterance("commands_en", "en-lock_the_Front_Door")
    async with connect(server, "ga", speak=True) as conn:
        await _configure(conn, _session(None))
        await stream(conn, half[: len(half) // 2], realtime=False)
        start = await _configure(conn, _session({"type": "server_vad", "silence_duration_ms": 500}, "audio/pcmu"))
        samples = np.concatenate([silence(300), spoken.samples(24_000), silence(3000)])
        response = await _voice_turn(conn, samples, "g711_ulaw")
        events = conn.events[start:]
        _check_user_turn(events, spoken.text)
        _check_spoken_answer(events, response, "g711_ulaw")
        assert not conn.of_type("error")
        conn.assert_conformant()
