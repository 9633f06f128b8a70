"""The language-model stage: one streaming interface for local and remote engines."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length", "cancelled"]


ToolChoice = str | dict[str, Any]


@dataclass(frozen=True)
class GenerationRequest:
    """``messages`` are OpenAI chat messages (system/user/assistant/tool, with ``tool_calls``).

    ``tools`` and ``tool_choice`` are in the chat-completions shape: ``{"type": "function", "function":
    {"name", "description", "parameters"}}`` and ``"auto"`` / ``"required"`` / ``{"type": "function",
    "function": {"name": ...}}``. No tools means the model can only answer in text.
    """

    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float = 0.8
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: ToolChoice = "auto"


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of the ``index``-th tool call of a generation: its ``name`` comes first, then argument text."""

    index: int
    name: str | None = None
    arguments: str = ""


@dataclass
class GenerationStats:
    """Token counts from the model's own tokenizer; ``cached_tokens`` is the reused prompt prefix."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason = "stop"


class Hold:
    """Lets the reader of a stream pause a local engine between two tokens, so that work which must finish first
    (synthesis of the first spoken words) has the CPU to itself. Engines on other machines ignore it."""

    def __init__(self) -> None:
        self._released = threading.Event()
        self._released.set()

    @property
    def held(self) -> bool:
        return not self._released.is_set()

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def wait(self, timeout_s: float) -> None:
        """Block the engine's thread while held, at most ``timeout_s``."""
        self._released.wait(timeout_s)


@dataclass
class TextStream:
    """Text deltas, then tool-call deltas, as they are generated; ``stats`` is complete once iteration ends."""

    deltas: AsyncIterator[str | ToolCallDelta]
    stats: GenerationStats = field(default_factory=GenerationStats)
    hold: Hold = field(default_factory=Hold)

    def __aiter__(self) -> AsyncIterator[str | ToolCallDelta]:
        return self.deltas

    async def aclose(self) -> None:
        """Stop generation now; the engine frees what it held."""
        self.hold.release()  # a held engine thread must wake to see that it is stopped
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

    code = "model_error"  # the ``error.code`` a failed response reports
