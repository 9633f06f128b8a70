"""Any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp's server, Ollama, a hosted API)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai

from .llm import EngineError, GenerationRequest, GenerationStats, TextStream


class OpenAIChatModel:
    def __init__(self, model: str, base_url: str, api_key: str | None = None, timeout_s: float = 60.0) -> None:
        self._model = model
        # Endpoints such as a local vLLM take any key; the SDK insists on one being set.
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout_s)

    @property
    def id(self) -> str:
        return self._model

    def generate(self, request: GenerationRequest) -> TextStream:
        stats = GenerationStats()
        return TextStream(self._stream(request, stats), stats)

    async def warm_up(self, instructions: str) -> None:
        """Fail fast at start-up if the endpoint or model name is wrong."""
        try:
            await self._client.models.retrieve(self._model)
        except openai.NotFoundError:
            pass  # several servers do not implement GET /models/{id}; the first turn will tell
        except openai.OpenAIError as exc:
            raise EngineError(f"language model endpoint unreachable: {exc}") from exc

    async def close(self) -> None:
        await self._client.close()

    async def _stream(self, request: GenerationRequest, stats: GenerationStats) -> AsyncIterator[str]:
        try:
            stream = await self._client.chat.completions.create(
                model=self._model,
                messages=request.messages,  # type: ignore[arg-type]
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
        except openai.OpenAIError as exc:
            raise EngineError(f"language model request failed: {exc}") from exc
        stats.finish_reason = "cancelled"
        try:
            async for chunk in stream:
                if chunk.usage is not None:
                    stats.prompt_tokens = chunk.usage.prompt_tokens
                    stats.completion_tokens = chunk.usage.completion_tokens
                    details = chunk.usage.prompt_tokens_details
                    stats.cached_tokens = (details.cached_tokens or 0) if details else 0
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content
                    if choice.finish_reason is not None:
                        stats.finish_reason = "length" if choice.finish_reason == "length" else "stop"
        except openai.OpenAIError as exc:
            raise EngineError(f"language model stream failed: {exc}") from exc
        finally:
            await stream.close()
