"""The local llama.cpp engine on both bundled models: streaming, usage, prompt-cache reuse, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from parley import models
from parley.engines.llama_local import LlamaCppModel
from parley.engines.llm import GenerationRequest, GenerationStats

SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer briefly."}


@pytest.fixture(scope="module", params=["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"])
async def llm(request: pytest.FixtureRequest) -> AsyncIterator[LlamaCppModel]:
    path = await asyncio.to_thread(models.resolve, request.param)
    model = await asyncio.to_thread(LlamaCppModel, request.param, path, n_ctx=2048)
    yield model
    await model.close()


async def _complete(
    llm: LlamaCppModel, messages: list[dict[str, str]], max_tokens: int = 48, temperature: float = 0.2
) -> tuple[str, GenerationStats]:
    stream = llm.generate(GenerationRequest(messages=messages, max_tokens=max_tokens, temperature=temperature))
    text = "".join([delta async for delta in stream])
    return text, stream.stats


async def test_streams_text_with_token_counts(llm: LlamaCppModel) -> None:
    messages = [SYSTEM, {"role": "user", "content": "What is two plus two?"}]
    text, stats = await _complete(llm, messages)
    assert text.strip()
    assert stats.prompt_tokens > 10
    assert 0 < stats.completion_tokens <= 48
    assert stats.finish_reason in {"stop", "length"}
    if stats.finish_reason == "stop":
        # Counted by the model's tokenizer: the text re-tokenizes to about as many tokens as were generated.
        assert abs(llm.count_tokens(text) - stats.completion_tokens) <= 2


async def test_next_turn_reuses_the_cached_prefix(llm: LlamaCppModel) -> None:
    first = [SYSTEM, {"role": "user", "content": "Name a colour."}]
    answer, first_stats = await _complete(llm, first)
    second = [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": "Another one?"}]
    _, stats = await _complete(llm, second)
    assert stats.cached_tokens >= first_stats.prompt_tokens
    assert stats.cached_tokens < stats.prompt_tokens


async def test_max_tokens_ends_with_length(llm: LlamaCppModel) -> None:
    messages = [SYSTEM, {"role": "user", "content": "Count from one to one hundred in words."}]
    # Greedy: sampled, the small model now and then answers in three tokens and stops.
    _, stats = await _complete(llm, messages, max_tokens=4, temperature=0.0)
    assert stats.completion_tokens == 4
    assert stats.finish_reason == "length"


async def test_closing_the_stream_stops_generation(llm: LlamaCppModel) -> None:
    messages = [SYSTEM, {"role": "user", "content": "Write a long story about the sea, at least 400 words."}]
    stream = llm.generate(GenerationRequest(messages=messages, max_tokens=1500))
    async for _ in stream:
        break
    await stream.aclose()
    # The worker thread notices within a token; the next request is served straight after.
    _text, stats = await asyncio.wait_for(_complete(llm, [SYSTEM, {"role": "user", "content": "Hi"}], 8), 30)
    assert stats.completion_tokens >= 1
    assert stream.stats.finish_reason == "cancelled"
    assert stream.stats.completion_tokens < 1500


async def test_a_held_generation_computes_no_tokens_until_released(llm: LlamaCppModel) -> None:
    messages = [SYSTEM, {"role": "user", "content": "Count from one to two hundred in words, one per line."}]
    # Greedy, so the answer is the same long count on every run (sampled, the small model may stop early).
    stream = llm.generate(GenerationRequest(messages=messages, max_tokens=400, temperature=0.0))
    deltas = aiter(stream)
    await anext(deltas)
    stream.hold.hold()
    await asyncio.sleep(0.5)  # dozens of tokens' time
    held_at = stream.stats.completion_tokens
    await asyncio.sleep(0.5)
    assert stream.stats.completion_tokens == held_at <= 3  # at most the tokens already under way
    stream.hold.release()
    while stream.stats.completion_tokens <= held_at + 2:
        await asyncio.wait_for(anext(deltas), 30)
    # Closing a held stream wakes its thread to stop: the next request is served straight after.
    stream.hold.hold()
    await asyncio.sleep(0.2)
    await stream.aclose()
    await asyncio.wait_for(_complete(llm, [SYSTEM, {"role": "user", "content": "Hi"}], 4), 3)
    assert stream.stats.finish_reason == "cancelled"  # it was still writing when it was closed


async def test_an_overlong_history_is_trimmed_from_the_oldest_turn() -> None:
    path = await asyncio.to_thread(models.resolve, "smollm2-135m-instruct")
    small = await asyncio.to_thread(LlamaCppModel, "small-context", path, n_ctx=512)
    history = [SYSTEM]
    for index in range(8):
        history += [
            {"role": "user", "content": f"Note {index}: " + "word " * 60},
            {"role": "assistant", "content": "ok"},
        ]
    history.append({"role": "user", "content": "Say OK."})
    _text, stats = await _complete(small, history, max_tokens=8)
    await small.close()
    assert stats.prompt_tokens + 8 <= 512
    assert stats.prompt_tokens > 200  # trimmed only as far as needed


async def test_interleaved_conversations_keep_their_cached_prefix(llm: LlamaCppModel) -> None:
    """Another conversation running in between must not cost this one its prompt cache."""
    alice = [
        {"role": "system", "content": "You help Alice plan a trip."},
        {"role": "user", "content": "Hi, I'm Alice."},
    ]
    bob = [{"role": "system", "content": "You help Bob fix a bike."}, {"role": "user", "content": "Hi, I'm Bob."}]
    alice_answer, alice_first = await _complete(llm, alice, 16)
    await _complete(llm, bob, 16)
    alice += [{"role": "assistant", "content": alice_answer}, {"role": "user", "content": "Where should I go?"}]
    _, alice_second = await _complete(llm, alice, 8)
    assert alice_second.cached_tokens >= alice_first.prompt_tokens


async def test_with_two_contexts_a_new_turn_does_not_wait_for_a_long_answer() -> None:
    path = await asyncio.to_thread(models.resolve, "smollm2-135m-instruct")
    llm = await asyncio.to_thread(LlamaCppModel, "two-contexts", path, n_ctx=1024, contexts=2)
    try:
        await llm.warm_up(SYSTEM["content"])
        story = [SYSTEM, {"role": "user", "content": "Write a long story about the sea, at least 400 words."}]
        long_answer = llm.generate(GenerationRequest(messages=story, max_tokens=400, temperature=0.2))
        stream = aiter(long_answer)
        await anext(stream)  # the long answer is being written
        text, stats = await _complete(llm, [SYSTEM, {"role": "user", "content": "Say hello."}], 8)
        assert text.strip() and stats.completion_tokens >= 1
        written_meanwhile = long_answer.stats.completion_tokens
        rest = "".join([delta async for delta in stream])
        # The short answer was written while the long one was still going (one context would have finished the
        # long one first).
        assert rest and written_meanwhile < long_answer.stats.completion_tokens
    finally:
        await llm.close()
