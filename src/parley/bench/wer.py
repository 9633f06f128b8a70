"""Word error rate between transcripts written in different styles (case, punctuation, numbers, symbols).

``jiwer`` does the alignment; it is a development dependency, imported only when a rate is computed.

Both sides are normalised the same way: lowercase, ``%`` spelt out, digit strings spelt out as words (English,
French and Portuguese up to 999,999; other languages keep digits), then everything but letters, digits and
in-word apostrophes becomes a space. So "Set Bed Light to 50%" and "set bed light to fifty percent" match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["corpus_wer", "normalize", "number_words", "wer"]

_PERCENT = {"en": "percent", "fr": "pour cent", "pt": "por cento"}
_THOUSANDS_SEPARATOR = re.compile(r"(?<=\d)[,.\u00a0\u202f](?=\d{3}\b)")
_DIGITS = re.compile(r"\d+")
_NOT_WORD = re.compile(r"[^\w']+|_")
_EDGE_APOSTROPHES = re.compile(r"(?<!\w)'|'(?!\w)")


def normalize(text: str, language: str = "en") -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    if language in _PERCENT:
        text = text.replace("%", f" {_PERCENT[language]} ")
    text = _THOUSANDS_SEPARATOR.sub("", text)
    text = _DIGITS.sub(lambda m: f" {number_words(int(m[0]), language) or m[0]} ", text)
    text = _NOT_WORD.sub(" ", text)
    text = _EDGE_APOSTROPHES.sub(" ", text)
    return " ".join(text.split())


def _jiwer() -> Any:
    try:
        import jiwer
    except ImportError as exc:
        raise RuntimeError("word error rate needs jiwer: pip install 'parley[dev]' (or pip install jiwer)") from exc
    return jiwer


def wer(reference: str, hypothesis: str, language: str = "en") -> float:
    """Word error rate of one utterance (an empty reference counts every hypothesis word as an error)."""
    ref, hyp = normalize(reference, language), normalize(hypothesis, language)
    if not ref:
        return float(len(hyp.split()))
    return float(_jiwer().wer(ref, hyp or ""))


def corpus_wer(references: Sequence[str], hypotheses: Sequence[str], language: str = "en") -> float:
    """Word errors over all utterances divided by reference words (long utterances weigh more)."""
    refs = [normalize(r, language) for r in references]
    hyps = [normalize(h, language) for h in hypotheses]
    return float(_jiwer().wer(refs, hyps))


def number_words(n: int, language: str) -> str | None:
    """``n`` spelt out in ``language`` (hyphens as spaces), or None where that is not covered here."""
    speller = _SPELLERS.get(language)
    if speller is None or not 0 <= n < 1_000_000:
        return None
    return speller(n)


def _table(words: str) -> tuple[str, ...]:
    return tuple(words.split())


_EN_ONES = _table(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
)
_EN_TENS = _table("_ _ twenty thirty forty fifty sixty seventy eighty ninety")


def _english(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        return " ".join([_EN_TENS[n // 10]] + ([_EN_ONES[n % 10]] if n % 10 else []))
    if n < 1000:
        return " ".join([_EN_ONES[n // 100], "hundred"] + ([_english(n % 100)] if n % 100 else []))
    return " ".join([_english(n // 1000), "thousand"] + ([_english(n % 1000)] if n % 1000 else []))


_FR_ONES = _table("zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize")
_FR_TENS = _table("_ _ vingt trente quarante cinquante soixante")


def _french(n: int) -> str:
    if n < 17:
        return _FR_ONES[n]
    if n < 20:
        return f"dix {_FR_ONES[n - 10]}"
    if n < 70:
        tens, unit = divmod(n, 10)
        return _FR_TENS[tens] + ("" if unit == 0 else " et un" if unit == 1 else f" {_FR_ONES[unit]}")
    if n < 80:
        return "soixante et onze" if n == 71 else f"soixante {_french(n - 60)}"
    if n < 100:
        return "quatre vingts" if n == 80 else f"quatre vingt {_french(n - 80)}"
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = "cent" if hundreds == 1 else f"{_FR_ONES[hundreds]} cent" + ("" if rest else "s")
        return head + (f" {_french(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    head = "mille" if thousands == 1 else f"{_french(thousands)} mille"
    if head.endswith(("cents mille", "vingts mille")):  # "deux cent mille": no plural s before mille
        head = head.replace("s mille", " mille")
    return head + (f" {_french(rest)}" if rest else "")


_PT_ONES = _table(
    "zero um dois três quatro cinco seis sete oito nove dez onze doze treze catorze quinze dezesseis dezessete "
    "dezoito dezenove"
)
_PT_TENS = _table("_ _ vinte trinta quarenta cinquenta sessenta setenta oitenta noventa")
_PT_HUNDREDS = _table("_ cento duzentos trezentos quatrocentos quinhentos seiscentos setecentos oitocentos novecentos")


def _portuguese(n: int) -> str:
    if n < 20:
        return _PT_ONES[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _PT_TENS[tens] + (f" e {_PT_ONES[unit]}" if unit else "")
    if n < 1000:
        if n == 100:
            return "cem"
        hundreds, rest = divmod(n, 100)
        return _PT_HUNDREDS[hundreds] + (f" e {_portuguese(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    head = "mil" if thousands == 1 else f"{_portuguese(thousands)} mil"
    if not rest:
        return head
    # "mil e cem", "mil e vinte", but "mil cento e vinte": "e" joins only a round hundred or a number below 100.
    joiner = " e " if rest < 100 or rest % 100 == 0 else " "
    return head + joiner + _portuguese(rest)


_SPELLERS: dict[str, Callable[[int], str]] = {"en": _english, "fr": _french, "pt": _portuguese}
