"""Recorded utterances for the voice benchmark: manifests, 24 kHz pcm16 for streaming, the last voiced sample.

A speech folder holds ``manifest.jsonl`` (one ``{"id", "audio", "text", "lang", "duration_s"}`` a line, ``audio``
relative to the folder) and the WAV files it names.

Recordings often end in a pause or room noise, so the end of the file is not the end of the speech. The clock of
voice-to-voice latency starts at the last voiced sample, found once per recording with Silero VAD (the model the
server itself listens with) and the rule of Silero's own segmentation (``get_speech_timestamps``): speech starts at
a 32 ms frame whose speech probability reaches 0.5 and goes on while it stays at or above 0.35. The last voiced
sample is the end of that last stretch, carried on over the soft end of the last word for as long as each 10 ms
window stays 10 dB above the background (the 25th-percentile window level after that stretch, or, where less than
200 ms follows it, of the whole recording; at least -60 dBFS): Silero
says where speech is, but its probability falls below threshold before a quiet final syllable does (on
``commands_en/en-nevermind`` it stops at 0.96 s, while "-mind" sounds until 1.25 s).
"""

from __future__ import annotations

import functools
import json
import os
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from ..engines.silero_vad import SileroVad
from ..engines.speech import LISTEN_RATE

RATE = 24_000  # what is streamed: pcm16 mono, the Realtime API's rate
BYTES_PER_MS = RATE * 2 // 1000
SPEECH_STARTS = 0.5
SPEECH_GOES_ON = SPEECH_STARTS - 0.15
# Silero's own minimum speech duration (get_speech_timestamps' min_speech_duration_ms): a shorter stretch after
# the words (a click, a breath) is not where the speech ends.
MIN_SPEECH_MS = 250
WINDOW_MS = 10
ABOVE_BACKGROUND_DB = 10.0
QUIETEST_BACKGROUND_DB = -60.0
BACKGROUND_WINDOWS = 200 // WINDOW_MS
DEFAULT_FOLDERS = ("commands_en", "ljspeech_en", "pocketsphinx_en")


@dataclass(frozen=True)
class Utterance:
    id: str
    folder: str
    audio: Path
    text: str
    lang: str
    duration_s: float


@dataclass(frozen=True)
class Recording:
    """An utterance ready to stream."""

    utterance: Utterance
    pcm: bytes
    """24 kHz mono pcm16."""
    voiced_end_ms: float
    """Where the last voiced sample ends, from the start of the recording."""
    voiced: bool
    """False when VAD found no speech at all (then ``voiced_end_ms`` is the end of the file)."""

    @property
    def duration_ms(self) -> float:
        return len(self.pcm) / BYTES_PER_MS


def shared_dir() -> Path:
    """The team's shared folder: ``$PARLEY_SHARED_DIR``, else ``shared`` beside the repository."""
    if env := os.environ.get("PARLEY_SHARED_DIR"):
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared"


def speech_source(name: str | Path) -> Path:
    """A folder or manifest path as given, else a folder of that name among the shared recordings."""
    path = Path(name)
    if path.exists() or path.is_absolute() or len(path.parts) > 1:
        return path
    return shared_dir() / "speech" / path


def source_label(source: Path) -> str:
    """How a source is named in reports: a shared folder by its name (the shared folder's place differs from
    machine to machine), anything else as given."""
    speech = shared_dir() / "speech"
    try:
        return f"shared:speech/{source.relative_to(speech)}"
    except ValueError:
        return str(source)


def default_sources() -> list[Path]:
    return [speech_source(name) for name in DEFAULT_FOLDERS]


def shared_sources() -> list[Path]:
    """Every folder of the shared recordings, by name."""
    return sorted(path.parent for path in (shared_dir() / "speech").glob("*/manifest.jsonl"))


def load_utterances(sources: Sequence[Path]) -> list[Utterance]:
    """Utterances of each source in order; a source is a ``manifest.jsonl`` or a folder that holds one."""
    utterances = []
    for source in sources:
        manifest = source / "manifest.jsonl" if source.is_dir() else source
        if not manifest.is_file():
            raise FileNotFoundError(f"no speech manifest at {manifest} (set PARLEY_SHARED_DIR?)")
        for number, line in enumerate(manifest.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                utterances.append(
                    Utterance(
                        id=entry["id"],
                        folder=manifest.parent.name,
                        audio=manifest.parent / entry["audio"],
                        text=entry["text"],
                        lang=entry.get("lang", "en"),
                        duration_s=float(entry.get("duration_s", 0.0)),
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{manifest}:{number}: not a manifest entry ({exc!r})") from None
    return utterances


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV file as float32 mono in [-1, 1) (channels averaged) and its sample rate."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * wav.getsampwidth()}-bit")
        channels, rate = wav.getnchannels(), wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return samples.reshape(-1, channels).mean(axis=1).astype(np.float32) / 32768.0, rate


def to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()


@functools.cache
def _vad() -> SileroVad:
    return SileroVad.from_source()


def to_listen_rate(audio: np.ndarray, rate: int) -> np.ndarray:
    """``audio`` at the rate the server's models listen at (16 kHz)."""
    return soxr.resample(audio, rate, LISTEN_RATE, quality="HQ") if rate != LISTEN_RATE else audio


def last_voiced_ms(audio: np.ndarray, rate: int) -> float | None:
    """Where the last stretch of speech ends, in ms from the start; None if Silero VAD finds no speech."""
    listen = to_listen_rate(audio, rate)
    speech_end = _silero_speech_end(listen)
    if speech_end is None:
        return None
    window = LISTEN_RATE * WINDOW_MS // 1000
    count = len(listen) // window
    if count == 0:
        return speech_end * 1000 / LISTEN_RATE
    power = np.mean(np.square(listen[: count * window].reshape(count, window), dtype=np.float64), axis=1)
    level_db = 10 * np.log10(power + 1e-12)
    index = speech_end // window
    after = level_db[index:] if count - index >= BACKGROUND_WINDOWS else level_db
    loud = level_db > max(float(np.percentile(after, 25)), QUIETEST_BACKGROUND_DB) + ABOVE_BACKGROUND_DB
    while index < count and loud[index]:
        index += 1
    return max(speech_end, index * window) * 1000 / LISTEN_RATE


def _silero_speech_end(listen: np.ndarray) -> int | None:
    """The sample where Silero's last stretch of speech (of at least MIN_SPEECH_MS, if any is) ends (16 kHz)."""
    vad = _vad()
    frame, state = vad.frame_samples, vad.new_state()
    stretches: list[tuple[int, int]] = []
    speaking = False
    for start in range(0, len(listen), frame):
        chunk = listen[start : start + frame]
        if len(chunk) < frame:
            chunk = np.pad(chunk, (0, frame - len(chunk)))
        probability = vad.speech_probability(chunk.astype(np.float32, copy=False), state)
        was_speaking, speaking = speaking, probability >= SPEECH_STARTS or (speaking and probability >= SPEECH_GOES_ON)
        if speaking:
            end = min(start + frame, len(listen))
            if was_speaking:
                stretches[-1] = (stretches[-1][0], end)
            else:
                stretches.append((start, end))
    if not stretches:
        return None
    long_enough = [end for begin, end in stretches if end - begin >= MIN_SPEECH_MS * LISTEN_RATE // 1000]
    return long_enough[-1] if long_enough else stretches[-1][1]


def prepare(utterance: Utterance) -> Recording:
    """Read, resample and find the last voiced sample (blocking: run it off the event loop)."""
    audio, rate = read_wav(utterance.audio)
    streamed = soxr.resample(audio, rate, RATE, quality="HQ") if rate != RATE else audio
    pcm = to_pcm16(streamed)
    if not pcm:
        raise ValueError(f"{utterance.audio}: no audio")
    voiced_end = last_voiced_ms(audio, rate)
    duration_ms = len(pcm) / BYTES_PER_MS
    if voiced_end is None:
        return Recording(utterance, pcm, duration_ms, voiced=False)
    return Recording(utterance, pcm, min(voiced_end, duration_ms), voiced=True)
