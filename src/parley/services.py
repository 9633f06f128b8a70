"""What the server loads once per process and shares with every session."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from . import models
from .config import Settings
from .engines.llm import LanguageModel

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    llm: LanguageModel | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    load_error: str | None = None

    async def load(self) -> None:
        """Load and warm the models off the event loop; ``ready`` is set once a session can be served."""
        try:
            self.llm = await asyncio.to_thread(build_llm, self.settings)
            await self.llm.warm_up(self.settings.instructions)
        except Exception as exc:
            self.load_error = str(exc)
            log.exception("loading models failed")
            raise
        self.ready.set()
        log.info("ready: language model %s", self.llm.id)

    async def close(self) -> None:
        if self.llm is not None:
            await self.llm.close()


def build_llm(settings: Settings) -> LanguageModel:
    """A remote endpoint when one is configured, else the profile's local GGUF model."""
    if settings.llm_base_url:
        from .engines.openai_chat import OpenAIChatModel

        if not settings.llm_model:
            raise ValueError("--llm-model (PARLEY_LLM_MODEL) is required with --llm-base-url")
        return OpenAIChatModel(settings.llm_model, settings.llm_base_url, settings.llm_api_key)

    from .engines.llama_local import LlamaCppModel

    source = settings.llm_source
    path = models.resolve(source, settings.cache_dir)
    model_id = source if source in models.CATALOG else path.stem
    return LlamaCppModel(model_id, path, n_ctx=settings.llm_context_tokens, n_threads=settings.llm_threads)
