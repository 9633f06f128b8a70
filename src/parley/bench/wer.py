"""Word error rate of transcripts against references written in another style.

References and transcripts differ in case, punctuation and how numbers are written ("50 percent", "fifty
percent", "50%"), so both sides go through :func:`normalize` first. ``jiwer`` does the alignment; it is a
development dependency and is imported only when a rate is computed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = ["normalize", "spell_english", "word_error_rate"]

_UNITS = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((1_000_000_000, "billion"), (1_000_000, "million"), (1_000, "thousand"))

_GROUPED_NUMBER = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
_NUMBER = re.compile(r"\d+")
_SEPARATORS = re.compile(r"[^\w']+|_")
_LONE_APOSTROPHE = re.compile(r"\B'|'\B")


def spell_english(number: int) -> str:
    """A non-negative integer in English words, without "and" or hyphens: 1455 -> "one thousand four hundred
    fifty five"."""
    if number < 20:
        return _UNITS[number]
    if number < 100:
        tens, unit = divmod(number, 10)
        return _TENS[tens] if unit == 0 else f"{_TENS[tens]} {_UNITS[unit]}"
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        words = f"{_UNITS[hundreds]} hundred"
        return words if rest == 0 else f"{words} {spell_english(rest)}"
    for size, name in _SCALES:
        if number >= size:
            head, rest = divmod(number, size)
            words = f"{spell_english(head)} {name}"
            return words if rest == 0 else f"{words} {spell_english(rest)}"
    raise AssertionError("unreachable")


def normalize(text: str, language: str = "en") -> str:
    """Lowercase words separated by single spaces. Everything but letters, digits and apostrophes inside words
    is a separator; in English, ``%`` becomes "percent" and digit runs are spelt out."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    if language == "en":
        text = text.replace("%", " percent ")
        text = _GROUPED_NUMBER.sub(lambda match: match[0].replace(",", ""), text)
        text = _NUMBER.sub(lambda match: f" {spell_english(int(match[0]))} ", text)
    text = _SEPARATORS.sub(" ", text)
    text = _LONE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str], language: str = "en") -> float:
    """Errors over all utterances divided by the reference words (so longer utterances weigh more)."""
    try:
        import jiwer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("word error rate needs jiwer: pip install 'parley[dev]' (or pip install jiwer)") from exc
    pairs = [(normalize(r, language), normalize(h, language)) for r, h in zip(references, hypotheses, strict=True)]
    pairs = [(ref, hyp) for ref, hyp in pairs if ref]
    if not pairs:
        raise ValueError("no reference words to compare against")
    refs, hyps = zip(*pairs, strict=True)
    return float(jiwer.wer(list(refs), list(hyps)))
