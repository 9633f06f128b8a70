"""Cut a model's streamed text into pieces worth speaking as soon as they are complete.

The first piece is cut early (at a comma once it has a few words) so the first audio starts soon; later
pieces wait for a sentence end or a longer clause, which sounds more natural. A decimal point or a dotted
abbreviation inside a word does not end a sentence, because a sentence end needs whitespace after it.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…。！？]+[\"')\]]*\s")  # noqa: RUF001 (CJK full stops end sentences too)
_CLAUSE_END = re.compile(r"[,;:—–]\s")  # noqa: RUF001 (dashes set clauses apart)
FIRST_CLAUSE_MIN_CHARS = 12
CLAUSE_MIN_CHARS = 60
# A run-on text with no punctuation is still cut, at a space, so speech never waits too long.
MAX_CHARS = 180


class ClauseChunker:
    def __init__(self) -> None:
        self._pending = ""
        self._emitted = 0

    def push(self, text: str) -> list[str]:
        """Add streamed text; return the pieces now complete (possibly none)."""
        self._pending += text
        pieces: list[str] = []
        while (cut := self._cut_point()) is not None:
            piece, self._pending = self._pending[:cut].strip(), self._pending[cut:]
            if piece:
                pieces.append(piece)
                self._emitted += 1
        return pieces

    def flush(self) -> str | None:
        """What is left when the text ends."""
        piece, self._pending = self._pending.strip(), ""
        return piece or None

    def _cut_point(self) -> int | None:
        text = self._pending
        if sentence := _SENTENCE_END.search(text):
            return sentence.end()
        min_chars = FIRST_CLAUSE_MIN_CHARS if self._emitted == 0 else CLAUSE_MIN_CHARS
        for clause in _CLAUSE_END.finditer(text):
            if clause.end() >= min_chars:
                return clause.end()
        if len(text) > MAX_CHARS:
            space = text.rfind(" ", 0, MAX_CHARS)
            return space + 1 if space > 0 else MAX_CHARS
        return None
