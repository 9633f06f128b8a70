"""Cut a model's streamed text into pieces worth speaking as soon as they are complete.

The first piece is cut early so the first audio starts soon: at a sentence end, at a comma once it has a few
characters, or else after a few words (not right after a word like "the" or "of", which would leave the voice
hanging on it). Synthesis takes time in proportion to the text, so a four-word first piece is heard about
0.1-0.2 s sooner than a whole first sentence; how few words a voice can start on depends on how fast it
synthesizes (``SpeechSynthesizer.first_piece_words``). So that the next piece is ready before those few words
have been played, the second piece is cut the same way, after at most twelve words. Later pieces wait for a sentence end
or a longer clause, which sounds more natural. A decimal point or a dotted
abbreviation inside a word does not end a sentence, because a sentence end needs whitespace after it.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…。！？]+[\"')\]]*\s")  # noqa: RUF001 (CJK full stops end sentences too)
_CLAUSE_END = re.compile(r"[,;:—–]\s")  # noqa: RUF001 (dashes set clauses apart)
FIRST_CLAUSE_MIN_CHARS = 12
# Words after which the first (unless the voice says otherwise) and the second piece are cut when no
# punctuation came first.
FIRST_PIECE_WORDS = 4
SECOND_PIECE_WORDS = 12
# English words a first piece should not end on: it continues to the next word instead.
# fmt: off
_GLUE_WORDS = frozenset({
    "a", "an", "the", "of", "to", "in", "on", "at", "for", "from", "with", "by", "and", "or", "but", "as", "if",
    "than", "so", "not", "no", "is", "are", "was", "were", "be", "been", "am", "it's", "i'm", "my", "your", "our",
    "their", "its", "this", "that", "these", "those",
})
# fmt: on
_WORD_END = re.compile(r"\S+\s")
CLAUSE_MIN_CHARS = 60
# A run-on text with no punctuation is still cut, at a space, so speech never waits too long.
MAX_CHARS = 180


class ClauseChunker:
    def __init__(self, first_piece_words: int = FIRST_PIECE_WORDS) -> None:
        self._pending = ""
        self._emitted = 0
        self._early_piece_words = (first_piece_words, SECOND_PIECE_WORDS)

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
        early = self._emitted < len(self._early_piece_words)
        min_chars = FIRST_CLAUSE_MIN_CHARS if early else CLAUSE_MIN_CHARS
        for clause in _CLAUSE_END.finditer(text):
            if clause.end() >= min_chars:
                return clause.end()
        if early and (words := _words_end(text, self._early_piece_words[self._emitted])) is not None:
            return words
        if len(text) > MAX_CHARS:
            space = text.rfind(" ", 0, MAX_CHARS)
            return space + 1 if space > 0 else MAX_CHARS
        return None


def _words_end(text: str, words: int) -> int | None:
    """Where an early piece ends when no punctuation came: after ``words`` whole words, or the first whole word
    after them that is neither a glue word nor a number."""
    for count, word in enumerate(_WORD_END.finditer(text), start=1):
        text_of_word = word.group().strip()
        # Nor after a number: it belongs with what follows ("1000 | personnes" was heard as "féminine").
        if count >= words and text_of_word.lower() not in _GLUE_WORDS and not any(c.isdigit() for c in text_of_word):
            return word.end()
    return None
