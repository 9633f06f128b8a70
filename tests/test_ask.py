"""``parley ask`` as a user runs it: real recordings in WAV, FLAC and MP3 at rates other than 24 kHz."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from parley.bench.wer import wer
from tests.conftest import TEST_KEYS
from tests.support.server import RunningServer, free_port
from tests.support.speech import Utterance, utterance

BRIEF = ["--instructions", "You are a voice assistant. Answer in one short sentence.", "--max-output-tokens", "40"]
# The fast profile's recognizer (Moonshine) on this command: 0.0 from the WAV and MP3, 0.67 from the 44.1 kHz
# stereo FLAC ("5% of drivers for 5 minutes"); audio broken on its way (wrong rate or channels) scores 1.0.
TRANSCRIPT_WER = 0.7


def parley_ask(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "parley.cli", "ask", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)


def recording_as(source: Utterance, folder: Path, suffix: str, rate: int, channels: int) -> Path:
    """The recording re-encoded at ``rate`` with ``channels`` (soundfile writes FLAC and MP3 itself)."""
    audio, source_rate = soundfile.read(source.path, dtype="float32")
    resampled = soxr.resample(audio, source_rate, rate)
    path = folder / f"{source.id}.{suffix}"
    soundfile.write(path, np.stack([resampled] * channels, axis=1), rate)
    return path


def check_reply(path: Path, seconds: float | None = None) -> None:
    reply, rate = soundfile.read(path, dtype="float32")
    assert rate == 24_000 and reply.ndim == 1
    assert len(reply) > rate // 2, "the spoken answer is shorter than half a second"
    assert np.sqrt(np.mean(np.square(reply))) > 0.01, "the spoken answer is silent"
    if seconds is not None:
        assert abs(len(reply) / rate - seconds) < 0.01


def test_wav_question_prints_transcript_and_answer(server: RunningServer, tmp_path: Path) -> None:
    question = utterance("commands_en", "en-what_s_the_date")  # 16 kHz WAV, read as it is shipped
    reply = tmp_path / "reply.wav"
    result = parley_ask(question.path, "--url", server.http_url, "--out", reply, *BRIEF)
    assert result.returncode == 0, result.stderr
    you, parley = result.stdout.splitlines()
    assert you.startswith("You: ") and wer(question.text, you[5:]) <= TRANSCRIPT_WER, you
    assert parley.startswith("Parley: ") and len(parley.split()) >= 3, parley
    check_reply(reply)


@pytest.mark.parametrize(("suffix", "rate", "channels"), [("flac", 44_100, 2), ("mp3", 22_050, 1)])
def test_flac_and_mp3_at_other_rates(
    server: RunningServer, tmp_path: Path, suffix: str, rate: int, channels: int
) -> None:
    question = utterance("commands_en", "en-set_a_timer_for_5_minutes")
    path = recording_as(question, tmp_path, suffix, rate, channels)
    assert soundfile.info(path).samplerate == rate
    reply = tmp_path / "reply.wav"
    # The WebSocket URL works as well as the base URL.
    result = parley_ask(path, "--url", server.ws_url, "--out", reply, "--json", *BRIEF)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert wer(question.text, answer["transcript"]) <= TRANSCRIPT_WER, answer
    assert answer["status"] in {"completed", "incomplete"} and len(answer["answer"].split()) >= 2, answer
    assert answer["usage"]["output_token_details"]["audio_tokens"] > 0
    check_reply(reply, answer["audio_seconds"])


def test_clear_errors(keyed_server: RunningServer, tmp_path: Path) -> None:
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not a recording")
    result = parley_ask(not_audio)
    assert result.returncode == 2 and result.stderr.startswith("parley ask: "), result.stderr

    question = utterance("commands_en", "en-what_s_the_date").path
    result = parley_ask(question, "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1 and "could not reach the server" in result.stderr, result.stderr

    result = parley_ask(question, "--url", keyed_server.http_url, "--api-key", "wrong")
    assert result.returncode == 1 and "HTTP 401" in result.stderr, result.stderr
    result = parley_ask(question, "--url", keyed_server.http_url, "--api-key", TEST_KEYS[0], *BRIEF)
    assert result.returncode == 0 and result.stdout.startswith("You: "), result.stderr
