"""Which of llama.cpp's CPU kernels a process runs: the fastest build variant this CPU can run, never AMX unless
asked for.

Parley builds llama.cpp once with every x86-64 variant of its CPU backend (``scripts/install.sh``: haswell,
skylakex, icelake, zen4, ...), each a library of its own, rather than with ``-march=native``: a native build
is tuned to the machine that built it and may crash on another, and on Sapphire Rapids class Xeons llama.cpp's
AMX kernels crash in the first decode (llama.cpp issue 20824). So the build runs on any x86-64 server, and
each process picks its variant at start: every variant reports how well this CPU supports it
(``ggml_backend_score``, 0 for not at all), the best one that uses no AMX wins, and llama.cpp loads it through
``GGML_BACKEND_PATH`` when it first initialises its backends. Child processes (the model worker, llama.cpp's
own server in tests) inherit the choice through the environment.

A build without variants (llama-cpp-python installed some other way) runs its one built-in CPU backend.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

BACKEND_PATH_ENV = "GGML_BACKEND_PATH"  # read by llama.cpp's ggml_backend_load_all
VARIANT_ENV = "PARLEY_LLAMA_CPU_VARIANT"  # an operator's choice, e.g. "haswell"; "sapphirerapids" allows AMX
VARIANT_PREFIX = "libggml-cpu-"
BUILT_IN = "built-in"
# Variants whose kernels use AMX tiles: skipped unless named, until llama.cpp's AMX path is proven on Parley's
# models (it segfaulted in the first decode of both profiles' models).
AMX_VARIANTS = frozenset({"sapphirerapids"})
# The CPU flags worth reporting: the instruction sets llama.cpp's variants are built for.
REPORTED_FLAGS = (
    "sse4_2", "avx", "f16c", "fma", "avx2", "bmi2", "avx_vnni", "avx512f", "avx512vbmi", "avx512_vnni",
    "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
)  # fmt: skip


class CpuVariantError(RuntimeError):
    """The named variant is not in this build, or this CPU cannot run it."""


@dataclass(frozen=True)
class CpuBackend:
    """The variant chosen (``built-in`` for a build without variants) and what it was chosen from."""

    variant: str
    path: Path | None
    runnable: tuple[str, ...] = ()  # the variants this CPU can run, best first
    skipped_amx: tuple[str, ...] = field(default=())  # runnable, but left out for their AMX kernels

    def describe(self) -> dict[str, object]:
        return {"variant": self.variant, "runnable": list(self.runnable), "skipped_amx": list(self.skipped_amx)}


_chosen: CpuBackend | None = None


def prepare(variant: str | None = None) -> CpuBackend:
    """Choose the CPU variant for this process (once) and point llama.cpp at it; call before loading a model.

    ``variant`` (or ``$PARLEY_LLAMA_CPU_VARIANT``) names one instead of the best; a variant already chosen by
    a parent process (``$GGML_BACKEND_PATH``) is kept.
    """
    global _chosen
    if _chosen is None:
        _chosen = choose(variant or os.environ.get(VARIANT_ENV) or None)
        if _chosen.path is not None:
            os.environ[BACKEND_PATH_ENV] = str(_chosen.path)
        log.info("llama.cpp CPU variant: %s (runnable here: %s)", _chosen.variant, ", ".join(_chosen.runnable) or "-")
    return _chosen


def choose(named: str | None) -> CpuBackend:
    """The variant named, or the best runnable one without AMX, with what it was chosen from."""
    variants = available_variants()
    if not variants:
        if named:
            raise CpuVariantError(f"{VARIANT_ENV}={named}: this llama.cpp build has no CPU variants to choose from")
        return CpuBackend(BUILT_IN, None)
    inherited = os.environ.get(BACKEND_PATH_ENV)
    scores = {name: score(path) for name, path in variants.items()}
    runnable = tuple(sorted((name for name, s in scores.items() if s > 0), key=lambda name: -scores[name]))
    skipped = tuple(name for name in runnable if name in AMX_VARIANTS and name != named)
    if named:
        if named not in variants:
            raise CpuVariantError(f"{VARIANT_ENV}={named}: not built; this build has {', '.join(sorted(variants))}")
        if scores[named] == 0:
            raise CpuVariantError(f"{VARIANT_ENV}={named}: this CPU cannot run it; it can run {', '.join(runnable)}")
        return CpuBackend(named, variants[named], runnable, skipped)
    if inherited and Path(inherited) in variants.values():
        name = next(name for name, path in variants.items() if path == Path(inherited))
        return CpuBackend(name, Path(inherited), runnable, skipped)
    usable = [name for name in runnable if name not in skipped]
    if not usable:
        raise CpuVariantError(f"no llama.cpp CPU variant runs on this CPU (built: {', '.join(sorted(variants))})")
    return CpuBackend(usable[0], variants[usable[0]], runnable, skipped)


def library_dir() -> Path | None:
    """llama-cpp-python's folder of native libraries, found without loading them."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def available_variants() -> dict[str, Path]:
    """The CPU variants of this build by name (``haswell``, ``zen4``, ...)."""
    folder = library_dir()
    if folder is None or not folder.is_dir():
        return {}
    return {
        path.name.removeprefix(VARIANT_PREFIX).split(".so")[0]: path
        for path in sorted(folder.glob(f"{VARIANT_PREFIX}*.so*"))
        if not path.is_symlink()
    }


def score(path: Path) -> int:
    """How well this CPU supports a variant, as llama.cpp itself ranks them (0: it cannot run it).

    Loading a variant's library runs no kernel: llama.cpp's own loader opens each one the same way to ask.
    """
    # The variants find libggml-base by name only (no RUNPATH): once it is loaded, the loader takes that one.
    ctypes.CDLL(str(path.parent / "libggml-base.so.0"))
    library = ctypes.CDLL(str(path))
    try:
        ask = library.ggml_backend_score
        ask.restype = ctypes.c_int
        return int(ask())
    except AttributeError:
        return 0
    finally:
        import _ctypes

        _ctypes.dlclose(library._handle)


def cpu_summary() -> dict[str, object]:
    """The CPU's model name and the instruction sets that decide llama.cpp's variant."""
    model, flags = "unknown", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(), "flags": [flag for flag in REPORTED_FLAGS if flag in flags]}
