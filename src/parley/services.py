"""What the server loads once per process and shares with every session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from .config import Settings
from .engines.llama_cpu import cpu_summary
from .engines.llm import EngineError, LanguageModel
from .engines.llm_process import WorkerLanguageModel
from .voice.stack import VoiceStack

log = logging.getLogger(__name__)


# A remote endpoint that is not up yet (started alongside Parley, restarting) is asked again after
# these delays, doubling up to the cap, until it answers or the server stops.
RETRY_FIRST_DELAY_S = 1.0
RETRY_MAX_DELAY_S = 30.0


@dataclass
class Services:
    settings: Settings
    llm: LanguageModel | None = None
    voice: VoiceStack | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    load_error: str | None = None
    cpu: dict[str, object] = field(default_factory=cpu_summary)
    local_engine: WorkerLanguageModel | None = None  # the local model's worker, from its start (not a remote one)

    def report(self) -> dict[str, object]:
        """What ``/readyz`` says: ``ready`` only while every stage can serve a turn; else why not."""
        report: dict[str, object] = {"status": "ready", "llm": self.llm.id if self.llm else None, "cpu": self.cpu}
        if self.local_engine is not None:
            report["engine"] = self.local_engine.status()
        if not self.ready.is_set():
            report.update(status="failed" if self.load_error else "loading", error=self.load_error)
        elif self.local_engine is not None and not self.local_engine.ready:  # restarting after a crash
            report.update(status="degraded", error=self.local_engine.problem)
        return report

    async def load(self) -> None:
        """Load and warm the models off the event loop; ``ready`` is set once a session can be served.

        ``llm`` is only set once the model answered, so nothing lists or serves a model that is not there.
        """
        log.info("CPU: %s, %s cores, %s", self.cpu["model"], self.cpu["cores"], " ".join(map(str, self.cpu["flags"])))
        try:
            llm = await asyncio.to_thread(build_llm, self.settings)
        except Exception as exc:
            self.load_error = str(exc)
            log.exception("loading models failed")
            raise
        if isinstance(llm, WorkerLanguageModel):
            self.local_engine = llm
        # The language model loads in its worker process (or at its endpoint) while the voice loads here.
        warming = asyncio.create_task(self._warm_up(llm))
        try:
            try:
                self.voice = await asyncio.to_thread(build_voice, self.settings)
            except Exception as exc:
                self.load_error = str(exc)
                log.exception("loading models failed")
                raise
            await warming  # says itself why it failed
        except BaseException:
            warming.cancel()
            with contextlib.suppress(BaseException):
                await warming
            await llm.close()
            raise
        self.llm = llm
        self.load_error = None
        self.ready.set()
        log.info("ready: language model %s", llm.id)

    async def _warm_up(self, llm: LanguageModel) -> None:
        delay = RETRY_FIRST_DELAY_S
        while True:
            try:
                await llm.warm_up(self.settings.instructions)
                return
            except EngineError as exc:
                if not self.settings.llm_base_url:
                    self.load_error = str(exc)
                    log.exception("loading models failed")
                    raise
                # A remote endpoint may come up later: say why we are not ready, and keep asking.
                self.load_error = f"{exc} (retrying in {delay:g}s)"
                log.warning("language model not ready: %s", self.load_error)
            except Exception as exc:
                self.load_error = str(exc)
                log.exception("loading models failed")
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY_S)

    async def close(self) -> None:
        if self.llm is not None:
            await self.llm.close()
        if self.voice is not None:
            self.voice.close()


def build_llm(settings: Settings) -> LanguageModel:
    """A remote endpoint when one is configured, else the profile's local GGUF model."""
    if settings.llm_base_url:
        from .engines.openai_chat import OpenAIChatModel

        if not settings.llm_model:
            raise ValueError("--llm-model (PARLEY_LLM_MODEL) is required with --llm-base-url")
        return OpenAIChatModel(settings.llm_model, settings.llm_base_url, settings.llm_api_key)

    # The local engine runs in a worker process, so a crash in llama.cpp's native code fails only the responses
    # it was generating (see engines.llm_process).
    from .engines.llm_worker import WorkerConfig

    return WorkerLanguageModel(
        WorkerConfig(
            settings.llm_source,
            settings.cache_dir,
            n_ctx=settings.llm_context_tokens,
            n_threads=settings.llm_threads,
            contexts=settings.llm_context_count,
            cpu_variant=settings.llama_cpu_variant,
            log_level=logging.getLogger().getEffectiveLevel(),
        )
    )


def build_voice(settings: Settings) -> VoiceStack:
    """The profile's speech models, loaded once and warmed so the first turn pays no start-up cost."""
    import numpy as np
    import soxr

    from .engines.recognizers import load_recognizer
    from .engines.silero_vad import SileroVad
    from .engines.smart_turn import SmartTurn
    from .engines.speech import LISTEN_RATE, SPEAK_RATE
    from .voice.voices import load_synthesizers

    vad = SileroVad.from_source()
    recognizer = load_recognizer(settings.recognizer_name, vad, settings.cache_dir, settings.speech_threads)
    synthesizer = load_synthesizers(settings.synthesizer_names, settings.cache_dir)
    end_of_turn = SmartTurn.from_source()
    # Warm every model on real speech (the voice's own), so the first caller pays no start-up cost. Every voice
    # engine speaks English; each is warmed, since the first need not be the one a caller's language reaches.
    spoken = [engine.synthesize("Hello, how can I help you today?", "alloy") for engine in synthesizer.engines.values()]
    hello = spoken[0].audio.astype(np.float32) / 32768
    recognizer.transcribe(soxr.resample(hello, SPEAK_RATE, LISTEN_RATE))
    end_of_turn.turn_complete_probability(np.zeros(LISTEN_RATE, dtype=np.float32))
    return VoiceStack(
        vad,
        end_of_turn,
        recognizer,
        synthesizer,
        settings.speech_threads,
        pause_ms=settings.early_start_ms or None,
    )
