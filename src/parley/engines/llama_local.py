"""Local GGUF models through llama.cpp, with the KV cache of the shared prompt prefix reused between turns.

A few ``Llama`` contexts per process (one by default), each driven by one thread at a time (llama.cpp contexts
are not thread-safe); a generation takes whichever context is free. With one context, a new turn's first words
wait until every answer started before it is fully written; a second context lets them start while another
session's long answer is still being written. After every generation the context's KV state is saved in a
bounded RAM cache keyed by its tokens, shared by the contexts; before the next one, the state sharing the
longest prefix with the new prompt is restored when it beats what the live context holds. So sessions taking
turns do not evict each other's history, and the system prompt stays warm.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from . import llama_cpu, tool_format
from .kv_states import PrefixStateCache, common_prefix
from .llama_tools import OutOfTokens, ToolCallWriter
from .llm import EngineError, GenerationRequest, GenerationStats, Hold, TextStream, ToolCallDelta

_DONE = object()
# Saved KV states of past turns (Qwen 0.5B: about 12 kB per token, so some 8,000 tokens of conversations); kept
# small so the default profile stays within 1.5 GB resident.
DEFAULT_PROMPT_CACHE_BYTES = 96 * 1024 * 1024
# The longest a reader may hold a generation (see llm.Hold): a bound, so a forgotten hold cannot stall it.
MAX_HOLD_S = 5.0


def default_threads() -> int:
    """CPU threads for the model when none are configured: one on a machine of up to four cores.

    llama.cpp's threads wait for each other by spinning at every step, so when another busy thread (the
    recognizer, the voice, another process) takes one of them off the CPU, all of them stall: measured on two
    cores with one other busy process, a 56-token prompt took 12 s with two threads and 1.2 s with one, and
    decoding took 5 s per token with two threads against 40 ms with one. Parley always has speech work
    running beside the model, so it leaves that work its own cores.
    """
    cores = os.cpu_count() or 1
    return 1 if cores <= 4 else cores // 2


class LlamaCppModel:
    def __init__(
        self,
        model_id: str,
        path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        contexts: int = 1,
        prompt_cache_bytes: int = DEFAULT_PROMPT_CACHE_BYTES,
    ) -> None:
        """``contexts``: generations that may run at once (each context holds its own KV cache and maps the
        weights again, which counts them again in the resident size)."""
        self._id = model_id
        llama_cpu.prepare()  # before llama.cpp loads its backends, on the first model
        threads = n_threads or default_threads()
        self._contexts = [
            llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,  # llama-cpp-python would take every core for the prompt: see default_threads
                n_batch=512,
                verbose=False,
            )
            for _ in range(contexts)
        ]
        self._saved_states = PrefixStateCache(prompt_cache_bytes)
        self._free: queue.SimpleQueue[llama_cpp.Llama] = queue.SimpleQueue()
        for context in self._contexts:
            self._free.put(context)
        self._llama = self._contexts[0]  # tokenizing and the chat template: the same in every context
        self._formatter = _chat_formatter(self._llama)
        self._template_knows_tools = tool_format.template_knows_tools(self._formatter.template)
        self._executor = ThreadPoolExecutor(max_workers=contexts, thread_name_prefix=f"llm-{model_id}")

    @property
    def id(self) -> str:
        return self._id

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode(), add_bos=False, special=False))

    def generate(self, request: GenerationRequest) -> TextStream:
        stats, hold = GenerationStats(), Hold()
        return TextStream(self._stream(request, stats, hold), stats, hold)

    async def warm_up(self, instructions: str) -> None:
        """Run one tiny turn so kernels are warm and the system prompt sits in the KV cache."""
        messages = [{"role": "system", "content": instructions}, {"role": "user", "content": "Hello"}]

        async def one_turn() -> None:
            async for _ in self.generate(GenerationRequest(messages=messages, max_tokens=1)):
                pass

        # As many at once as there are contexts: each holds its context to the end, so every context is warmed.
        await asyncio.gather(*(one_turn() for _ in self._contexts))

    async def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        for context in self._contexts:
            context.close()

    async def _stream(
        self, request: GenerationRequest, stats: GenerationStats, hold: Hold
    ) -> AsyncIterator[str | ToolCallDelta]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        loop.run_in_executor(self._executor, self._run, request, stats, hold, stop, emit)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise EngineError(f"local model failed: {item}") from item
                yield item  # type: ignore[misc]
        finally:
            # Closing early (cancel, disconnect) stops the thread at its next token.
            stop.set()

    def _run(
        self,
        request: GenerationRequest,
        stats: GenerationStats,
        hold: Hold,
        stop: threading.Event,
        emit: Callable[[object], None],
    ) -> None:
        context = self._free.get()  # the executor runs no more generations than there are contexts
        try:
            self._generate_blocking(context, request, stats, hold, stop, emit)
        except Exception as exc:  # reported to the awaiting response, never lost in the thread
            emit(exc)
        finally:
            self._free.put(context)
            emit(_DONE)

    def _generate_blocking(
        self,
        llama: llama_cpp.Llama,
        request: GenerationRequest,
        stats: GenerationStats,
        hold: Hold,
        stop: threading.Event,
        emit: Callable[[object], None],
    ) -> None:
        if stop.is_set():
            stats.finish_reason = "cancelled"
            return
        budget = request.max_tokens or llama.n_ctx()
        tools = request.tools if request.tool_choice != "none" else []
        reserve = min(budget, llama.n_ctx() // 4)
        tokens = self._fit_prompt(request.messages, tools, reserve)
        budget = min(budget, llama.n_ctx() - len(tokens))
        stats.prompt_tokens = len(tokens)
        self._saved_states.restore_if_longer(llama, tokens)
        stats.cached_tokens = _reusable_prefix(list(llama._input_ids), tokens)
        sampling = _Sampling(llama, request.temperature, stats, hold, stop, budget)
        stats.finish_reason = "stop"
        try:
            if tools:
                answered = tool_format.answered_calls(request.messages)
                ToolCallWriter(sampling, tools, emit, answered).write(tokens, request.tool_choice)
            else:
                _write_text(sampling, tokens, emit)
        except OutOfTokens:
            stats.finish_reason = "length"
        except _Stopped:
            stats.finish_reason = "cancelled"
            return
        self._saved_states.save(llama)

    def _fit_prompt(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], reserve: int) -> list[int]:
        """Drop the oldest turns (never the system prompt or the latest turn) until the prompt fits."""
        messages = list(messages)
        while True:
            tokens = self._tokenize_chat(messages, tools)
            if len(tokens) + reserve <= self._llama.n_ctx():
                return tokens
            first_turn = 1 if messages and messages[0]["role"] == "system" else 0
            if len(messages) - first_turn <= 1:
                raise EngineError(
                    f"the prompt ({len(tokens)} tokens) does not fit the context of {self._llama.n_ctx()} tokens"
                )
            del messages[first_turn]

    def _tokenize_chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[int]:
        shown, template_tools = tool_format.for_template(messages, tools, self._template_knows_tools)
        result = self._formatter(messages=shown, tools=template_tools)
        return self._llama.tokenize(result.prompt.encode(), add_bos=not result.added_special, special=True)


class _Stopped(Exception):
    """The stream was closed: generation stops at the next token."""


class _Sampling:
    """Token sampling on the shared context for one request: counting, the budget, cancellation."""

    def __init__(
        self,
        llama: llama_cpp.Llama,
        temperature: float,
        stats: GenerationStats,
        hold: Hold,
        stop: threading.Event,
        budget: int,
    ) -> None:
        self._llama = llama
        self._temperature = temperature
        self._stats = stats
        self._hold = hold
        self._stop = stop
        self._budget = budget
        self._vocab = llama._model.vocab

    def tokens(self, prompt: list[int], grammar: str | None = None, temperature: float | None = None) -> Iterator[int]:
        constraint = llama_cpp.LlamaGrammar.from_string(grammar, verbose=False) if grammar else None
        temp = self._temperature if temperature is None else temperature
        generated = self._llama.generate(prompt, temp=temp, top_k=40, top_p=0.95, min_p=0.05, grammar=constraint)
        for token in generated:
            if self._stop.is_set():
                raise _Stopped
            if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                return
            self._stats.completion_tokens += 1
            yield token
            if self._stats.completion_tokens >= self._budget:
                raise OutOfTokens
            self._hold.wait(MAX_HOLD_S)  # before the next token is computed

    def next_token_probability(self, prompt: list[int], tokens: set[int]) -> float:
        generated = self._llama.generate(prompt, temp=self._temperature)
        try:
            next(generated)  # evaluates the prompt; the sampled token itself is not used
        finally:
            generated.close()
        logits = np.ctypeslib.as_array(self._llama._ctx.get_logits_ith(-1), shape=(self._llama.n_vocab(),))
        probabilities = np.exp(logits - logits.max())
        return float(probabilities[list(tokens)].sum() / probabilities.sum())

    def discard(self, count: int) -> None:
        self._stats.completion_tokens -= count

    def tokenize(self, text: str) -> list[int]:
        return self._llama.tokenize(text.encode(), add_bos=False, special=True)

    def piece(self, token: int) -> bytes:
        return self._llama.detokenize([token])


def _write_text(sampling: _Sampling, prompt: list[int], emit: Callable[[object], None]) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for token in sampling.tokens(prompt):
        if text := decoder.decode(sampling.piece(token)):
            emit(text)
    if tail := decoder.decode(b"", final=True):
        emit(tail)


def _chat_formatter(llama: llama_cpp.Llama) -> Jinja2ChatFormatter:
    """The model's own chat template from its GGUF metadata, as llama.cpp's server would use it."""
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise EngineError("the GGUF file has no chat template (tokenizer.chat_template)")
    eos, bos = llama.token_eos(), llama.token_bos()
    return Jinja2ChatFormatter(
        template=template,
        eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos],
    )


def _reusable_prefix(cached: list[int], prompt: list[int]) -> int:
    """How many prompt tokens llama.cpp will take from the KV cache (it always re-evaluates one at least)."""
    common = common_prefix(cached, prompt)
    return common - 1 if common == len(prompt) and common > 0 else common
