"""The GGUF file llama.cpp loads for a model: the catalog's weights, converted once where a type runs faster.

llama.cpp reads a prompt through fast matrix kernels only for some weight types. SmolLM2's packaged Q4_1 is not
one of them on x86: its prompt is read token by token at decoding speed. Q8_0 holds every Q4_1 weight to within
a few percent of one Q4_1 step and takes the fast kernels: on one core of the 2-core machine, a 12-token turn
was read in 73 ms instead of 101, decoding was as fast (14.9 against 14.7 ms per token), and perplexity on
the shared speech transcripts moved from 64.68 to 64.84. (Q4_0 would be faster still but is lossy: 83.3.)
A catalog entry names such a type in ``ModelSpec.load_as``; the converted file lives in the cache next to the
model's checksum and is written once (``parley models prepare`` does it at install).
"""

from __future__ import annotations

import ctypes
import logging
import os
import tempfile
from pathlib import Path

import llama_cpp

from .. import models
from . import llama_cpu

log = logging.getLogger(__name__)

# The types a catalog entry may ask for, by the name ``ModelSpec.load_as`` uses.
_FTYPES = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0}


def local_weights(source_or_name: str, cache_dir: Path | None = None) -> Path:
    """The GGUF path to load for a catalog name or a source (see :func:`parley.models.resolve`).

    Blocking (the first call for a converted model writes it: about a second for SmolLM2): run it in a worker
    thread. Sources that are not catalog names are loaded as they are.
    """
    llama_cpu.prepare()  # so that whatever loads the file next finds llama.cpp's CPU backend
    path = models.resolve(source_or_name, cache_dir)
    spec = models.CATALOG.get(source_or_name.strip())
    if spec is None or spec.load_as is None:
        return path
    return _converted(path, spec, cache_dir)


def _converted(source: Path, spec: models.ModelSpec, cache_dir: Path | None) -> Path:
    if spec.load_as not in _FTYPES or spec.sha256 is None:
        raise ValueError(f"catalog entry {spec.name!r}: cannot load as {spec.load_as!r} (known: {', '.join(_FTYPES)})")
    target = (cache_dir or models.default_cache_dir()) / "models" / spec.sha256 / f"{spec.name}.{spec.load_as}.gguf"
    if target.is_file():  # only a complete conversion is ever renamed to this name
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to %s in %s, once", spec.name, spec.load_as, target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    llama_log = logging.getLogger("llama-cpp-python")  # llama.cpp's own log: a line per tensor converted
    level = llama_log.level
    llama_log.setLevel(logging.ERROR)
    try:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = _FTYPES[spec.load_as]
        params.allow_requantize = True  # the source is quantized already
        failed = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
        if failed:
            raise models.ModelNotFoundError(f"llama.cpp could not convert {source} to {spec.load_as} (code {failed})")
        os.replace(tmp, target)
    finally:
        llama_log.setLevel(level)
        tmp.unlink(missing_ok=True)
    return target
