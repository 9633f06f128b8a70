"""One fact of a knowledge base, and the error every bad knowledge file raises."""

from __future__ import annotations

from dataclasses import dataclass


class KnowledgeError(ValueError):
    """A knowledge file that cannot be used; the message names the file (and line) and what is wrong."""


@dataclass(frozen=True)
class Fact:
    id: str  # the source's own id, else "L<line>" in its file: stable across loads, shown in logs
    text: str  # the fact, or the answer of a question/answer pair
    topic: str = ""  # its heading path, topic column or question: indexed beside the text

    def render(self) -> str:
        """The fact as the language model reads it."""
        if not self.topic:
            return self.text
        separator = " " if self.topic.rstrip().endswith("?") else ": "
        return f"{self.topic}{separator}{self.text}"
