"""llama.cpp's CPU variants: built for every x86-64 CPU, the best one this CPU runs chosen at start, AMX never
unless named, and the choice is what llama.cpp really loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parley import models
from parley.engines import llama_cpu
from parley.engines.llama_cpu import AMX_VARIANTS, CpuVariantError

# What the x86-64 build has: one variant per instruction-set level, from plain x86-64 to AVX-512 with AMX.
X86_VARIANTS = {"x64", "sse42", "sandybridge", "haswell", "skylakex", "icelake", "zen4", "alderlake", "sapphirerapids"}
AVX512_VARIANTS = {"skylakex", "cannonlake", "cascadelake", "icelake", "cooperlake", "zen4", "sapphirerapids"}


def cpu_flags() -> set[str]:
    return set(llama_cpu.cpu_summary()["flags"])  # type: ignore[arg-type]


def test_the_build_has_a_variant_for_every_x86_64_level() -> None:
    assert set(llama_cpu.available_variants()) >= X86_VARIANTS


def test_the_best_variant_this_cpu_runs_is_chosen() -> None:
    chosen = llama_cpu.choose(None)
    scores = {name: llama_cpu.score(path) for name, path in llama_cpu.available_variants().items()}
    assert chosen.variant in chosen.runnable and scores[chosen.variant] > 0
    assert chosen.variant not in AMX_VARIANTS
    assert scores[chosen.variant] == max(s for name, s in scores.items() if name not in AMX_VARIANTS)
    if "avx2" in cpu_flags():
        assert scores["haswell"] > 0 and scores[chosen.variant] >= scores["haswell"]
    assert ("avx512f" in cpu_flags()) == (chosen.variant in AVX512_VARIANTS)
    assert scores["x64"] > 0  # the baseline runs anywhere


def test_amx_kernels_are_left_out_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a Sapphire Rapids Xeon, where the AMX variant ranks first and crashes llama.cpp's first decode."""
    ranks = {"sapphirerapids": 90, "zen4": 80, "icelake": 70, "haswell": 40}
    monkeypatch.setattr(llama_cpu, "score", lambda path: ranks.get(path.name.split("-")[2].split(".")[0], 1))
    chosen = llama_cpu.choose(None)
    assert chosen.variant == "zen4" and chosen.skipped_amx == ("sapphirerapids",)
    assert chosen.runnable[0] == "sapphirerapids"
    named = llama_cpu.choose("sapphirerapids")
    assert named.variant == "sapphirerapids" and named.skipped_amx == ()


def test_a_variant_that_is_not_built_or_cannot_run_is_refused() -> None:
    with pytest.raises(CpuVariantError, match="pentium: not built"):
        llama_cpu.choose("pentium")
    unrunnable = [name for name, path in llama_cpu.available_variants().items() if llama_cpu.score(path) == 0]
    if not unrunnable:
        pytest.skip("this CPU runs every variant")
    with pytest.raises(CpuVariantError, match="this CPU cannot run it"):
        llama_cpu.choose(unrunnable[0])


@pytest.mark.parametrize("variant", [None, "haswell"], ids=["best", "named"])
def test_llama_cpp_loads_the_chosen_variant(variant: str | None) -> None:
    """In a new process, as the model worker starts: the library llama.cpp loads is the one chosen."""
    model = models.resolve("smollm2-135m-instruct")
    script = (
        "import sys; from parley.engines import llama_cpu; chosen = llama_cpu.prepare(sys.argv[2] or None);"
        "print('chosen', chosen.variant, flush=True); import llama_cpp;"
        "llama = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, verbose=True);"
        "print('tokens', len(llama.tokenize(b'hello there')), flush=True)"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(model), variant or ""], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    chosen = run.stdout.split("chosen ", 1)[1].split()[0]
    assert chosen == (variant or llama_cpu.choose(None).variant)
    loaded = [line for line in run.stderr.splitlines() if "loaded CPU backend from" in line]
    assert len(loaded) == 1 and Path(loaded[0].split("from ", 1)[1].strip()).name.startswith(
        f"libggml-cpu-{chosen}."
    ), loaded
