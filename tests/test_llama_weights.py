"""The weights llama.cpp loads: the catalog's SmolLM2 converted once to Q8_0, as good as the packaged Q4_1."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from parley import models
from parley.engines import llama_cpu
from parley.engines.llama_weights import local_weights
from tests.conformance.paths import shared_dir

SMOLLM2 = "smollm2-135m-instruct"
Q8_0_FILE_TYPE = 7  # llama.cpp's LLAMA_FTYPE_MOSTLY_Q8_0, as GGUF's general.file_type stores it


def _load(path: Path) -> llama_cpp.Llama:
    llama_cpu.prepare()
    return llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=1, logits_all=True, verbose=False)


def _next_token_guesses(llama: llama_cpp.Llama, tokens: list[int]) -> np.ndarray:
    llama.reset()
    llama.eval(tokens)
    return np.asarray(llama.scores[: len(tokens)]).argmax(axis=1)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return local_weights(SMOLLM2, tmp_path_factory.mktemp("cache"))


def test_smollm2_is_converted_once_into_the_cache(converted: Path) -> None:
    cache = converted.parents[2]
    assert converted.parent == cache / "models" / models.CATALOG[SMOLLM2].sha256
    assert _load(converted).metadata["general.file_type"] == str(Q8_0_FILE_TYPE)
    written = converted.stat().st_mtime_ns
    assert local_weights(SMOLLM2, cache) == converted
    assert converted.stat().st_mtime_ns == written
    assert [p.name for p in converted.parent.iterdir()] == [converted.name]  # no temporary file left


def test_converted_model_predicts_as_the_packaged_one(converted: Path) -> None:
    # Real text: the shared recordings' transcripts. A lossy type (Q4_0: perplexity 64.7 -> 83.3) would not hold.
    manifest = shared_dir() / "speech" / "ljspeech_en" / "manifest.jsonl"
    text = " ".join(json.loads(line)["text"] for line in manifest.read_text(encoding="utf-8").splitlines())
    packaged = _load(models.resolve(SMOLLM2))
    tokens = packaged.tokenize(text.encode())[:400]
    agreement = np.mean(_next_token_guesses(packaged, tokens) == _next_token_guesses(_load(converted), tokens))
    assert agreement >= 0.9


def test_sources_outside_the_catalog_load_as_they_are(tmp_path: Path) -> None:
    source = models.CATALOG[SMOLLM2].source
    assert isinstance(source, str)
    assert local_weights(source, tmp_path) == models.resolve(source)
    assert not list(tmp_path.iterdir())


def test_unknown_weight_type_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(models.CATALOG, SMOLLM2, replace(models.CATALOG[SMOLLM2], load_as="q3_x"))
    with pytest.raises(ValueError, match="q3_x"):
        local_weights(SMOLLM2, tmp_path)
