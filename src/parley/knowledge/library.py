"""The server's knowledge bases, by name: loaded and indexed once at start-up, chosen per session."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .facts import Fact, KnowledgeError
from .index import FactIndex
from .loader import load_facts

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DEFAULT_TOP_K = 5


@dataclass
class KnowledgeBase:
    name: str
    path: Path
    index: FactIndex
    top_k: int = DEFAULT_TOP_K

    @property
    def facts(self) -> list[Fact]:
        return self.index.facts

    def search(self, question: str) -> list[Fact]:
        """The ``top_k`` facts most relevant to ``question``. Blocking: call it from a worker thread."""
        return self.index.search(question, self.top_k)


class KnowledgeLibrary:
    """Named bases; the first one loaded is every session's default."""

    def __init__(self, bases: list[KnowledgeBase]) -> None:
        self.bases = {base.name: base for base in bases}

    @property
    def default(self) -> str | None:
        return next(iter(self.bases), None)

    def __contains__(self, name: object) -> bool:
        return name in self.bases

    def get(self, name: str | None) -> KnowledgeBase | None:
        return self.bases.get(name) if name is not None else None

    def unknown_message(self, name: str) -> str:
        known = ", ".join(f"'{n}'" for n in self.bases) or "none (start the server with --knowledge)"
        return f"Unknown knowledge base '{name}'. Known bases: {known}."

    def close(self) -> None:
        for base in self.bases.values():
            base.index.close()


def parse_spec(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` or a bare ``PATH`` (then named after the file, without its suffix)."""
    name, equals, path = spec.partition("=")
    if equals and _NAME.fullmatch(name):
        return name, Path(path)
    path_only = Path(spec)
    return path_only.stem, path_only


def load_library(specs: list[str], top_k: int = DEFAULT_TOP_K) -> KnowledgeLibrary:
    """Load and index every ``NAME=PATH``/``PATH`` in ``specs``. Blocking; raises :class:`KnowledgeError`."""
    bases: list[KnowledgeBase] = []
    for spec in specs:
        name, path = parse_spec(spec.strip())
        if not _NAME.fullmatch(name):
            raise KnowledgeError(f"{spec}: {name!r} is not a usable base name (letters, digits, '_', '-', '.')")
        if any(base.name == name for base in bases):
            raise KnowledgeError(f"{spec}: a knowledge base named {name!r} is already loaded; name them NAME=PATH")
        bases.append(KnowledgeBase(name, path, FactIndex(load_facts(path)), top_k))
    return KnowledgeLibrary(bases)
