"""Any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp's server, Ollama, a hosted API).

Tools go to the endpoint as they are and its native tool calls come back as ``ToolCallDelta``s: the model
there does its own constraining (or not); Parley checks the arguments when the call is complete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai

from .llm import EngineError, GenerationRequest, GenerationStats, TextStream, ToolCallDelta

# Start-up checks must answer quickly; a dead or black-holed endpoint is retried by the caller.
WARM_UP_TIMEOUT_S = 10.0


class OpenAIChatModel:
    def __init__(self, model: str, base_url: str, api_key: str | None = None, timeout_s: float = 60.0) -> None:
        self._model = model
        self._base_url = base_url
        # Endpoints such as a local vLLM take any key; the SDK insists on one being set.
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout_s)

    @property
    def id(self) -> str:
        return self._model

    def generate(self, request: GenerationRequest) -> TextStream:
        stats = GenerationStats()
        return TextStream(self._stream(request, stats), stats)

    async def warm_up(self, instructions: str) -> None:
        """Fail fast at start-up if the endpoint is unreachable or refuses the key."""
        client = self._client.with_options(timeout=WARM_UP_TIMEOUT_S, max_retries=0)
        try:
            await client.models.retrieve(self._model)
        except openai.NotFoundError:
            pass  # several servers do not implement GET /models/{id}; the first turn will tell
        except openai.OpenAIError as exc:
            raise EngineError(f"language model endpoint {self._base_url} unreachable: {exc}") from exc

    async def close(self) -> None:
        await self._client.close()

    async def _stream(self, request: GenerationRequest, stats: GenerationStats) -> AsyncIterator[str | ToolCallDelta]:
        # "No limit" and "no tools" are left out rather than sent as null, which some servers refuse.
        options: dict[str, Any] = {"max_tokens": request.max_tokens} if request.max_tokens is not None else {}
        if request.tools and request.tool_choice != "none":
            options |= {"tools": request.tools, "tool_choice": request.tool_choice}
        try:
            stream = await self._client.chat.completions.create(
                model=self._model,
                messages=request.messages,  # type: ignore[arg-type]
                temperature=request.temperature,
                stream=True,
                stream_options={"include_usage": True},
                **options,
            )
        except openai.OpenAIError as exc:
            raise EngineError(f"language model request failed: {exc}") from exc
        stats.finish_reason = "cancelled"
        usage_reported = False
        output_chunks = 0
        try:
            async for chunk in stream:
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    usage_reported = True
                    stats.prompt_tokens = usage.prompt_tokens or 0
                    stats.completion_tokens = usage.completion_tokens or 0
                    details = usage.prompt_tokens_details
                    stats.cached_tokens = (details.cached_tokens or 0) if details else 0
                # Servers differ at the edges: a usage-only chunk may carry no ``choices`` or a null delta.
                for choice in getattr(chunk, "choices", None) or ():
                    content = choice.delta.content if choice.delta is not None else None
                    if content:
                        output_chunks += 1
                        yield content
                    for call in (choice.delta.tool_calls if choice.delta is not None else None) or ():
                        output_chunks += 1
                        function = call.function
                        name = function.name if function is not None else None
                        arguments = (function.arguments if function is not None else None) or ""
                        yield ToolCallDelta(call.index, name=name or None, arguments=arguments)
                    if choice.finish_reason is not None:
                        stats.finish_reason = "length" if choice.finish_reason == "length" else "stop"
        except openai.OpenAIError as exc:
            raise EngineError(f"language model stream failed: {exc}") from exc
        except httpx.HTTPError as exc:  # the SDK does not wrap transport errors raised mid-stream
            raise EngineError(f"language model stream broke off: {exc!r}") from exc
        finally:
            if not usage_reported:
                # Some servers (llama-cpp-python's) ignore ``stream_options.include_usage``. The prompt
                # count is then unknown and stays 0; the completion count is the number of output chunks,
                # exact for servers that stream one token per chunk (llama.cpp-based ones do).
                stats.completion_tokens = output_chunks
            await stream.close()
