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
from .listener import Listener
from .speaker import Speaker
from .voices import Synthesizers

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Speech work (VAD batches, recognition, synthesis) shares this many threads; the language model has its own.
DEFAULT_WORKERS = 2


@dataclass
class VoiceStack:
    vad: VoiceActivityModel
    end_of_turn: EndOfTurnModel
    recognizer: SpeechRecognizer
    synthesizer: Synthesizers  # takes OpenAI voice names and picks the engine for the language
    workers: int = DEFAULT_WORKERS
    pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="speech")

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking speech work in the pool, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: function(*args, **kwargs))

    def listener(self, audio_format: AudioFormatName, detection: TurnDetection | None) -> Listener:
        return Listener(audio_format, detection, self.vad, self.end_of_turn)

    def speaker(self, voice: str, speed: float, language: str | None, audio_format: AudioFormatName) -> Speaker:
        choice = self.synthesizer.choose(voice, language)
        log.info("speaking %s: %s voice %s", choice.language, choice.engine, choice.voice)
        resampler = codec.OutputResampler(audio_format)

        def encode(samples: np.ndarray, last: bool) -> bytes:
            return codec.encode(resampler.process(samples, last=last), audio_format)

        return Speaker(self.synthesizer, voice, speed, language, encode, self.pool)

    async def transcribe(self, audio: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        return await self.run(self.recognizer.transcribe, audio, language, prompt)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
