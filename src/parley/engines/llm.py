"""The language-model stage: one streaming interface for local and remote engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class GenerationRequest:
    """``messages`` are OpenAI chat messages (system/user/assistant/tool, with ``tool_calls``)."""

    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float = 0.8


@dataclass
class GenerationStats:
    """Token counts from the model's own tokenizer; ``cached_tokens`` is the reused prompt prefix."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason = "stop"


@dataclass
class TextStream:
    """Text deltas as they are generated; ``stats`` is complete once iteration ends (or is closed)."""

    deltas: AsyncIterator[str]
    stats: GenerationStats = field(default_factory=GenerationStats)

    def __aiter__(self) -> AsyncIterator[str]:
        return self.deltas

    async def aclose(self) -> None:
        """Stop generation now; the engine frees what it held."""
        close = getattr(self.deltas, "aclose", None)
        if close is not None:
            await close()


class LanguageModel(Protocol):
    @property
    def id(self) -> str:
        """The name the server lists in ``/v1/models``."""
        ...

    def generate(self, request: GenerationRequest) -> TextStream:
        """Start generating. Iterating the stream drives it; closing it cancels it."""
        ...

    async def warm_up(self, instructions: str) -> None:
        """Prepare for the first request (load, fill the prompt cache with the system prompt)."""
        ...

    async def close(self) -> None: ...


class EngineError(RuntimeError):
    """The engine failed a request; the response fails, the session goes on."""
