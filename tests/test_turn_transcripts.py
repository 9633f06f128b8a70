"""A committed turn keeps its words whatever happens to the response answering it: a response cancelled while
the turn is still being transcribed (by the client, or because the caller spoke on) leaves the turn its
transcript, in the conversation and on the wire."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import numpy as np

from parley.bench.wer import wer
from parley.realtime.early_answer import EarlyAnswer
from tests.support.client import RecordingConnection, connect
from tests.support.scripted import ScriptedModel, early_answer_session
from tests.support.server import RunningServer
from tests.support.speech import silence, stream, utterance

# About 9.7 s, read with a pause of about 0.3 s after "concerned,": long enough to take a while to transcribe.
LONG_SENTENCE = "LJ001-0001"
TURN_TIMEOUT_S = 240


async def test_a_committed_turn_keeps_the_transcript_its_early_answer_started() -> None:
    session = early_answer_session("printing differs", ScriptedModel(["Sure."]), delay_s=0.2)
    early = EarlyAnswer(session, "item_turn", np.zeros(16_000, dtype=np.float32))
    early.commit_turn()
    await early.drop()  # the response ended (the caller spoke on) before the transcript was ready
    assert (await early.transcript).text == "printing differs"


async def test_an_early_answer_dropped_before_its_turn_ends_stops_transcribing() -> None:
    session = early_answer_session("printing", ScriptedModel(["Sure."]), delay_s=5.0)
    early = EarlyAnswer(session, "item_turn", np.zeros(16_000, dtype=np.float32))
    await early.drop()  # the caller went on speaking: this transcript answers nothing
    await asyncio.sleep(0)
    assert early.transcript.cancelled()


def _committed(conn: RecordingConnection) -> list[str]:
    return [e["item_id"] for e in conn.of_type("input_audio_buffer.committed")]


def _transcripts(conn: RecordingConnection) -> dict[str, str]:
    return {
        e["item_id"]: e["transcript"]
        for e in conn.events
        if e["type"] == "conversation.item.input_audio_transcription.completed"
    }


async def test_cancelling_a_response_leaves_the_turn_its_transcript(server: RunningServer) -> None:
    spoken = utterance("ljspeech_en", LONG_SENTENCE)
    async with connect(server, "ga", speak=True) as conn:
        audio: dict[str, Any] = {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": None}}
        await conn.send({"type": "session.update", "session": {"type": "realtime", "audio": audio}})
        await conn.until("session.updated")
        await stream(conn, spoken.samples(24_000), realtime=False)
        await conn.send({"type": "input_audio_buffer.commit"})
        await conn.send({"type": "response.create"})
        await conn.send({"type": "response.cancel"})  # while the turn is still being transcribed
        item_id = (await conn.until("input_audio_buffer.committed"))["item_id"]
        done = (await conn.until("response.done", TURN_TIMEOUT_S))["response"]
        assert done["status"] == "cancelled", done["status_details"]
        completed = await conn.until("conversation.item.input_audio_transcription.completed", TURN_TIMEOUT_S)
        assert completed["item_id"] == item_id and wer(spoken.text, completed["transcript"]) <= 0.3, completed
        await conn.send({"type": "conversation.item.retrieve", "item_id": item_id})
        kept = (await conn.until("conversation.item.retrieved"))["item"]["content"][0]
        assert kept["transcript"] == completed["transcript"]
        conn.assert_conformant()


async def test_a_caller_who_pauses_and_goes_on_keeps_the_words_before_the_pause(
    default_server: RunningServer,
) -> None:
    """Whisper base takes longer than the reader's pause: the first part's response is cancelled when the
    reader goes on, before its transcript is ready. Every part of the sentence must still be transcribed."""
    spoken = utterance("ljspeech_en", LONG_SENTENCE)
    fmt = {"type": "audio/pcm", "rate": 24000}
    audio = {
        "input": {
            "format": fmt,
            "transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 200},
        },
        "output": {"format": fmt, "voice": "alloy"},
    }
    session = {"type": "realtime", "output_modalities": ["audio"], "max_output_tokens": 20, "audio": audio}
    async with connect(default_server, "ga", speak=True, knowledge="") as conn:
        await conn.send({"type": "session.update", "session": session})
        await conn.until("session.updated")
        samples = np.concatenate([silence(300), spoken.samples(24_000), silence(3000)])
        sender = asyncio.create_task(stream(conn, samples))
        deadline = asyncio.get_running_loop().time() + TURN_TIMEOUT_S
        try:
            while not sender.done() or set(_committed(conn)) - _transcripts(conn).keys():
                assert asyncio.get_running_loop().time() < deadline, "a committed turn got no transcript"
                with contextlib.suppress(TimeoutError):
                    await conn.next(1.0)
        finally:
            sender.cancel()
        committed = _committed(conn)
        assert len(committed) >= 2, "the reader's pause did not end a turn: this test needs it to"
        cancelled = [e for e in conn.of_type("response.done") if e["response"]["status"] == "cancelled"]
        assert cancelled, "no response was cancelled by the reader going on"
        heard = " ".join(_transcripts(conn)[item] for item in committed)
        assert wer(spoken.text, heard) <= 0.3, heard
