"""``parley bench llm``: how fast this build of llama.cpp reads a prompt and writes tokens, per model, in process.

The two numbers llama.cpp's own ``llama-bench`` reports (pp: prompt processing, tg: text generation), measured
the way Parley runs the model (its threads, its batch size, its converted weights): a prompt of
``prompt_tokens`` read into an empty context, then ``decode_tokens`` written one at a time. Each repeat starts
from an empty context; the first run is a warm-up and is not counted. Which CPU variant ran is reported, so
builds and variants can be compared on one machine (``PARLEY_LLAMA_CPU_VARIANT`` picks one).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import llama_cpp

from ..engines import llama_cpu
from ..engines.llama_local import default_threads
from ..engines.llama_weights import local_weights

__all__ = ["ModelSpeed", "markdown", "run"]

# Words to fill a prompt with: a real text, so the tokenizer sees ordinary words.
_FILLER = (
    "The caller asks when the clinic opens on Saturday, whether they need an appointment for a flu shot, "
    "and if the parking lot behind the building is free for patients. "
)


@dataclass(frozen=True)
class ModelSpeed:
    model: str
    variant: str
    threads: int
    prompt_tokens: int
    prompt_ms: float  # median over the repeats
    prompt_tokens_per_s: float
    decode_tokens: int
    decode_ms_per_token: float
    decode_tokens_per_s: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def run(
    models: Sequence[str],
    prompt_tokens: int = 128,
    decode_tokens: int = 64,
    repeats: int = 5,
    threads: int | None = None,
    on_run: Callable[[str], None] = lambda _: None,
) -> list[ModelSpeed]:
    backend = llama_cpu.prepare()
    threads = threads or default_threads()
    results = []
    for name in models:
        llama = llama_cpp.Llama(
            model_path=str(local_weights(name)),
            n_ctx=prompt_tokens + decode_tokens + 8,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=512,
            verbose=False,
        )
        prompt = _prompt(llama, prompt_tokens)
        prompt_ms, decode_ms = [], []
        for attempt in range(repeats + 1):
            read_ms, write_ms = _one_run(llama, prompt, decode_tokens)
            if attempt:  # the first is a warm-up
                prompt_ms.append(read_ms)
                decode_ms.append(write_ms)
            on_run(f"{name} [{backend.variant}] run {attempt}: prompt {read_ms:.1f} ms, decode {write_ms:.2f} ms/token")
        llama.close()
        p50_prompt, p50_decode = statistics.median(prompt_ms), statistics.median(decode_ms)
        results.append(
            ModelSpeed(
                name,
                backend.variant,
                threads,
                prompt_tokens,
                round(p50_prompt, 1),
                round(prompt_tokens / p50_prompt * 1000, 1),
                decode_tokens,
                round(p50_decode, 2),
                round(1000 / p50_decode, 1),
            )
        )
    return results


def _prompt(llama: llama_cpp.Llama, count: int) -> list[int]:
    tokens: list[int] = []
    while len(tokens) < count:
        tokens += llama.tokenize(_FILLER.encode(), add_bos=False, special=False)
    return tokens[:count]


def _one_run(llama: llama_cpp.Llama, prompt: list[int], decode_tokens: int) -> tuple[float, float]:
    """Milliseconds to read ``prompt`` from an empty context, and per token written after it (greedy)."""
    llama.reset()
    start = time.perf_counter()
    llama.eval(prompt)
    read_s = time.perf_counter() - start
    token = int(llama.scores[llama.n_tokens - 1].argmax())
    start = time.perf_counter()
    for _ in range(decode_tokens):
        llama.eval([token])
        token = int(llama.scores[llama.n_tokens - 1].argmax())
    write_s = time.perf_counter() - start
    return read_s * 1000, write_s * 1000 / decode_tokens


def markdown(results: Sequence[ModelSpeed]) -> str:
    lines = [
        "| model | CPU variant | threads | prompt tokens | prompt ms | prompt tokens/s | decode ms/token "
        "| decode tokens/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.model} | {r.variant} | {r.threads} | {r.prompt_tokens} | {r.prompt_ms} | {r.prompt_tokens_per_s} "
            f"| {r.decode_ms_per_token} | {r.decode_tokens_per_s} |"
        )
    return "\n".join(lines) + "\n"
