"""Knowledge grounding: fact sheets loaded once, indexed with SQLite FTS5, searched for every user turn."""

from .facts import Fact, KnowledgeError
from .library import KnowledgeBase, KnowledgeLibrary, load_library, parse_spec
from .loader import load_facts

__all__ = [
    "Fact",
    "KnowledgeBase",
    "KnowledgeError",
    "KnowledgeLibrary",
    "load_facts",
    "load_library",
    "parse_spec",
]
