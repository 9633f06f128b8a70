"""Cut a model's streamed text into pieces worth speaking as soon as they are complete.

The first piece is cut early so the first audio starts soon: at a sentence end, at a comma once it has a few
characters, or else after a few words (not right after a word like "the" or "of", which would leave the voice
hanging on it). Synthesis takes time in proportion to the text, so a four-word first piece is heard about
0.1-0.2 s sooner than a whole first sentence; how few words a voice can start on depends on how fast it
synthesizes (``SpeechSynthesizer.first_piece_words``). So that the next piece is ready before those few words
have been played, the second piece is cut the same way, after at most twelve words. Later pieces wait for a
sentence end or a longer clause, which sounds more natural. When the caller says how many characters the voice can still
synthesize before the audio already made has been played, a piece after the first is cut at a word within that
(a slow voice, or a busy machine, then speaks in shorter pieces instead of leaving silence between them).
A decimal point or a dotted abbreviation inside a word does not end a sentence, because a sentence end needs
whitespace after it.
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
# A piece cut for time has at least this many words: each synthesis has a fixed cost (some 0.4 s for Kokoro on
# two cores), so one-word pieces would fall further behind.
DEADLINE_MIN_WORDS = 2
# A run-on text with no punctuation is still cut, at a space, so speech never waits too long.
MAX_CHARS = 180


class ClauseChunker:
    def __init__(self, first_piece_words: int = FIRST_PIECE_WORDS) -> None:
        self._pending = ""
        self._emitted = 0
        self._early_piece_words = (first_piece_words, SECOND_PIECE_WORDS)

    def add(self, text: str) -> None:
        self._pending += text

    def next_piece(self, max_chars: int | None = None, *, final: bool = False) -> str | None:
        """The next complete piece of the text added so far, or None. ``max_chars``: the longest piece that
        would still be ready in time (None: no deadline; the first piece is never cut for time). ``final``: the
        text has ended, so what is left is complete."""
        while (cut := self._cut_point(max_chars, final)) is not None:
            piece, self._pending = self._pending[:cut].strip(), self._pending[cut:]
            if piece:
                self._emitted += 1
                return piece
        return None

    def _cut_point(self, max_chars: int | None, final: bool) -> int | None:
        planned = self._rest_end() if final else self._planned_cut_point()
        if max_chars is None or self._emitted == 0:
            return planned
        return _deadline_end(self._pending[:planned], max_chars, planned is not None) or planned

    def _rest_end(self) -> int | None:
        """Where the last piece ends once the text has ended: all that is left."""
        return len(self._pending) if self._pending.strip() else None

    def _planned_cut_point(self) -> int | None:
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


def _deadline_end(text: str, max_chars: int, complete: bool) -> int | None:
    """Where a piece that must be ready in time ends: after the last whole word within ``max_chars`` (not on a
    glue word where another word will do), at least :data:`DEADLINE_MIN_WORDS` words in. None when no cut for
    time is needed: the piece (``complete``) or the whole words so far still fit in ``max_chars``."""
    ends = [word.end() for word in _WORD_END.finditer(text)]
    if complete and (not ends or ends[-1] < len(text.rstrip())):
        ends.append(len(text))  # the planned piece's last word has no whitespace after it yet
    if len(ends) < DEADLINE_MIN_WORDS or len(text[: ends[-1]].rstrip()) <= max_chars:
        return None
    fitting = [end for end in ends[DEADLINE_MIN_WORDS - 1 :] if len(text[:end].rstrip()) <= max_chars]
    if not fitting:
        return ends[DEADLINE_MIN_WORDS - 1]
    unglued = [end for end in fitting if text[:end].split()[-1].lower() not in _GLUE_WORDS]
    return (unglued or fitting)[-1]
