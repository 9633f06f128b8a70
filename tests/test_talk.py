"""``parley talk``'s audio path against a real server, with a fake device: a real recording as the
microphone, played at real-time pace, and a speaker that records what it is given to play."""

from __future__ import annotations

import asyncio
import io
import itertools
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from parley.bench.wer import wer
from parley.clients.audio_io import CHUNK_SAMPLES, RATE, Playback
from parley.clients.settings import voice_session
from parley.clients.talk import TalkLog, talk
from tests.support.client import sdk_client
from tests.support.server import RunningServer
from tests.support.speech import utterance

CHUNK_MS = CHUNK_SAMPLES * 1000 // RATE
WAIT_LIMIT_S = 120  # a step that waits for the server gives up after this
TRANSCRIPT_WER = 0.5


@dataclass
class Speak:
    samples: np.ndarray


@dataclass
class SilenceUntil:
    """Silence into the microphone until ``condition(answer_ms, playing)`` holds, where ``answer_ms`` is how
    much answer audio the speaker has played since this step began."""

    condition: Callable[[int, bool], bool]


def answer_played(at_least_ms: int) -> SilenceUntil:
    return SilenceUntil(lambda answer_ms, playing: answer_ms >= at_least_ms and not playing)


def answer_playing(for_ms: int) -> SilenceUntil:
    return SilenceUntil(lambda answer_ms, playing: answer_ms >= for_ms and playing)


class FakeDevice:
    """The microphone plays a script in real time; the speaker takes what Playback hands it, in real time."""

    def __init__(self, script: list[Speak | SilenceUntil]) -> None:
        self.playback = Playback()
        self.script = script
        self.played = bytearray()  # everything the speaker was given, silence between answers included
        self.answer_ms = 0  # answer audio played so far
        self._speaker = asyncio.create_task(self._speak())

    async def _speak(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for block in itertools.count(1):
            if self.playback.playing:
                self.answer_ms += CHUNK_MS
            self.played += self.playback.read(CHUNK_SAMPLES)
            await asyncio.sleep(max(0.0, start + block * CHUNK_MS / 1000 - loop.time()))

    async def microphone(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        silence = bytes(CHUNK_SAMPLES * 2)
        for step in self.script:
            if isinstance(step, Speak):
                data = step.samples.astype("<i2").tobytes()
                chunks: Iterable[bytes] = [data[i : i + len(silence)] for i in range(0, len(data), len(silence))]
            else:
                chunks = self._silence_until(step, silence)
            for chunk in chunks:
                yield chunk
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * CHUNK_MS / 1000 - loop.time()))

    def _silence_until(self, step: SilenceUntil, silence: bytes) -> Iterator[bytes]:
        began = self.answer_ms
        for _ in range(WAIT_LIMIT_S * 1000 // CHUNK_MS):
            if step.condition(self.answer_ms - began, self.playback.playing):
                return
            yield silence
        raise AssertionError("the server did not get there in time")

    async def close(self) -> None:
        self._speaker.cancel()


async def converse(
    server: RunningServer, script: list[Speak | SilenceUntil], **session: object
) -> tuple[TalkLog, str, FakeDevice]:
    device = FakeDevice(script)
    out = io.StringIO()
    client = sdk_client(server)
    try:
        settings = voice_session(turn_detection="server_vad", **session)  # type: ignore[arg-type]
        log = await talk(client, "gpt-realtime", device, settings, out)  # type: ignore[arg-type]
    finally:
        await device.close()
        await client.close()
    return log, out.getvalue(), device


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    return float(np.sqrt(np.mean(np.square(samples)))) if len(samples) else 0.0


async def test_a_spoken_question_is_transcribed_answered_and_played(server: RunningServer) -> None:
    question = utterance("commands_en", "en-what_s_the_weather")
    script = [Speak(question.samples(RATE)), answer_played(500)]
    log, printed, device = await converse(
        server, script, instructions="Answer in one short sentence.", max_output_tokens=40
    )
    assert len(log.user_turns) == 1 and wer(question.text, log.user_turns[0]) <= TRANSCRIPT_WER, log
    (status, answer), *_ = log.answers
    assert status in {"completed", "incomplete"} and len(answer.split()) >= 2, log
    assert printed.startswith(f"You: {log.user_turns[0]}\nParley: {answer}"), printed
    assert rms(bytes(device.played)) > 100, "the speaker was given only silence"
    assert not log.truncations


async def test_speaking_over_the_answer_stops_it_and_truncates_to_what_was_heard(server: RunningServer) -> None:
    first = utterance("commands_en", "en-what_s_the_date")
    second = utterance("commands_en", "en-set_a_timer_for_5_minutes")
    script = [
        Speak(first.samples(RATE)),
        answer_playing(400),
        Speak(second.samples(RATE)),
        answer_played(300),
    ]
    log, printed, device = await converse(
        server, script, instructions="Answer in three long sentences.", max_output_tokens=80
    )
    # The first answer was cut where the caller came in, and the server was told how much was heard.
    assert len(log.truncations) == 1, log
    item_id, heard_ms = log.truncations[0]
    assert heard_ms == device.playback.heard_ms(item_id) and heard_ms >= 400
    assert "[interrupted]" in printed or "(interrupted after" in printed, printed
    # The second question was heard and answered in full. Its recording opens with a click that the VAD takes for
    # a short turn at some frame phases (how the 32 ms frames fall depends on how long the answer played): that
    # turn has no words, so it is not answered (no second truncation above), and is left out here.
    heard = [turn for turn in log.user_turns if turn]
    assert len(heard) == 2 and wer(second.text, heard[1]) <= TRANSCRIPT_WER, log
    assert log.answers[-1][0] in {"completed", "incomplete"}, log


@pytest.mark.skipif(
    subprocess.run(
        [sys.executable, "-c", "import sounddevice, sys; sys.exit(len(sounddevice.query_devices()) > 0)"],
        capture_output=True,
        check=False,
    ).returncode
    != 0,
    reason="this machine has audio devices (or no PortAudio): the no-device message cannot be shown here",
)
def test_no_audio_device_is_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "parley.cli", "talk"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "no audio device found" in result.stderr and "parley ask" in result.stderr, result.stderr
