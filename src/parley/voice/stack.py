"""The process's speech models and the worker pool they run in, shared by every session."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

import numpy as np

from ..engines.speech import EndOfTurnModel, SpeechRecognizer, Transcript, VoiceActivityModel
from ..realtime.session_config import AudioFormatName, TurnDetection
from . import audio as codec
from .listener import Listener, ListenResult
from .speaker import Speaker, VoiceSettings
from .voices import Synthesizers

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Recognition and synthesis share this many threads; the language model has its own.
DEFAULT_WORKERS = 2
# Listening (VAD, end-of-turn) has its own thread, so turn detection never queues behind a long transcription
# or synthesis of another session.
LISTEN_WORKERS = 1
# A pause this long inside a turn starts work on the answer before the turn is confirmed over: the first silent
# VAD frame. Inside a turn the VAD's hysteresis keeps the dips within words voiced, so this starts little more
# work that is dropped than 96 ms did (commands_en 0.25 against 0.06 false starts per utterance, an4_en 0.62
# against 0.5, ljspeech_en 1.08 against 0.92), and Moonshine hears the turn as well from it (WER on 159 turns:
# 0.330 against 0.326); the fast profile's first audio came 41 ms sooner at the median than at 64 ms.
DEFAULT_PAUSE_MS = 32


@dataclass
class VoiceStack:
    vad: VoiceActivityModel
    end_of_turn: EndOfTurnModel
    recognizer: SpeechRecognizer
    synthesizer: Synthesizers  # takes OpenAI voice names and picks the engine for the language
    workers: int = DEFAULT_WORKERS
    pause_ms: int | None = DEFAULT_PAUSE_MS  # None: no early start
    pool: ThreadPoolExecutor = field(init=False)
    listen_pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="speech")
        self.listen_pool = ThreadPoolExecutor(LISTEN_WORKERS, thread_name_prefix="listen")

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking speech work (recognition, synthesis) in the pool, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: function(*args, **kwargs))

    async def listen(self, listener: Listener, audio: bytes, received_at: float) -> ListenResult:
        """Run a listener over appended audio in the listening thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.listen_pool, listener.process, audio, received_at)

    def listener(self, audio_format: AudioFormatName, detection: TurnDetection | None, start_ms: int = 0) -> Listener:
        return Listener(audio_format, detection, self.vad, self.end_of_turn, start_ms=start_ms, pause_ms=self.pause_ms)

    def speaker(self, voice: str, speed: float, language: str | None, audio_format: AudioFormatName) -> Speaker:
        choice = self.synthesizer.choose(voice, language)
        log.info("speaking %s: %s voice %s", choice.language, choice.engine, choice.voice)
        resampler = codec.OutputResampler(audio_format)

        def encode(samples: np.ndarray, last: bool) -> bytes:
            return codec.encode(resampler.process(samples, last=last), audio_format)

        return Speaker(self.synthesizer, VoiceSettings(voice, speed, language, audio_format), encode, self.pool)

    async def transcribe(self, audio: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        return await self.run(self.recognizer.transcribe, audio, language, prompt)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.listen_pool.shutdown(wait=False, cancel_futures=True)
