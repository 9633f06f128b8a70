"""Which local engine and voice speak for an OpenAI voice name, in a given language and profile.

The table of names to voices is in ``docs/voices.md``. In short: each OpenAI name has a gender and a rank; each
Kokoro language family lists its female and male voices best first, and a name takes the voice of its rank
(wrapping round where a family has fewer). Piper has one voice, used for every name. espeak-ng speaks each
language with a female or male variant. Unknown names fall back to :data:`DEFAULT_VOICE`, without an error.

The engines are tried in order for the language asked: the first that speaks it speaks. Profiles set the order
(``fast``: Piper, which speaks English only, then espeak-ng; ``default``: Kokoro then espeak-ng) unless the
server's ``synthesizers`` setting names another. :func:`load_synthesizers` loads engines once per process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from ..config import SynthesizerName

if TYPE_CHECKING:
    from ..engines.speech import SpeechChunk, SpeechSynthesizer

__all__ = [
    "DEFAULT_VOICE",
    "KOKORO_VOICES",
    "OPENAI_VOICES",
    "PIPER_VOICE",
    "SPEED_RANGE",
    "Synthesizers",
    "VoiceChoice",
    "choose_voice",
    "espeak_voice",
    "kokoro_family",
    "kokoro_voice",
    "load_synthesizers",
    "normalize_language",
]

# Gender and rank of each OpenAI voice: rank 0 gets a family's best voice of that gender.
_FEMALE = ("alloy", "marin", "coral", "sage", "shimmer")
_MALE = ("cedar", "ash", "ballad", "echo", "verse")
OPENAI_VOICES: tuple[str, ...] = (*_FEMALE, *_MALE)
DEFAULT_VOICE = "alloy"  # the Realtime API's default voice
SPEED_RANGE = (0.25, 1.5)  # what the Realtime API accepts

# Kokoro v1.0 voices per language family: (female, male), best first by the model card's quality grades.
KOKORO_VOICES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en-us": (
        ("af_heart", "af_bella", "af_nicole", "af_kore", "af_aoede"),
        ("am_michael", "am_fenrir", "am_puck", "am_echo", "am_liam"),
    ),
    "en-gb": (("bf_emma", "bf_isabella", "bf_alice", "bf_lily"), ("bm_george", "bm_fable", "bm_lewis", "bm_daniel")),
    "es": (("ef_dora",), ("em_alex",)),
    "fr": (("ff_siwis",), ("ff_siwis",)),  # Kokoro has no French male voice
    "hi": (("hf_alpha", "hf_beta"), ("hm_omega", "hm_psi")),
    "it": (("if_sara",), ("im_nicola",)),
    "ja": (("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro"), ("jm_kumo",)),
    "pt-br": (("pf_dora",), ("pm_alex",)),
    "zh": (
        ("zf_xiaobei", "zf_xiaoni", "zf_xiaoxiao", "zf_xiaoyi"),
        ("zm_yunjian", "zm_yunxi", "zm_yunxia", "zm_yunyang"),
    ),
}

PIPER_VOICE = "en_US-joe-medium"  # male, US English; the only Piper voice on the registries we reach

# espeak-ng variants (espeak-ng-data/voices/!v): "" is its default male voice.
_ESPEAK_VARIANTS = (("f3", "f2", "f4", "f1", "f5"), ("", "m3", "m2", "m4", "m1"))
# Where espeak-ng's name differs from ours; it has no Nynorsk, and Bokmål is the nearest it speaks.
_ESPEAK_LANGUAGES = {"zh": "cmn", "no": "nb", "nn": "nb"}


def normalize_language(language: str | None) -> str:
    """A lower-case tag: ``None`` and plain English are ``en-us``; every Portuguese is ``pt-br`` (the only
    Portuguese Kokoro speaks); Chinese is ``zh``; other tags keep their region (``en-gb``) or are a bare code."""
    tag = (language or "en").strip().lower().replace("_", "-")
    primary = tag.split("-")[0]
    if primary == "en":
        return "en-gb" if tag in ("en-gb", "en-uk") else "en-us"
    if primary == "pt":
        return "pt-br"
    if primary in ("zh", "cmn"):
        return "zh"
    return tag


def _gender_rank(openai_voice: str) -> tuple[int, int]:
    name = openai_voice.strip().lower()
    if name in _MALE:
        return 1, _MALE.index(name)
    return 0, _FEMALE.index(name) if name in _FEMALE else _FEMALE.index(DEFAULT_VOICE)


def kokoro_family(language: str | None) -> str | None:
    """The Kokoro language family (a key of :data:`KOKORO_VOICES`) for ``language``, or None."""
    tag = normalize_language(language)
    return next((t for t in (tag, tag.split("-")[0]) if t in KOKORO_VOICES), None)


def kokoro_voice(openai_voice: str, language: str | None) -> str:
    """The Kokoro voice for an OpenAI name in ``language`` (US English for a language Kokoro lacks)."""
    gender, rank = _gender_rank(openai_voice)
    options = KOKORO_VOICES[kokoro_family(language) or "en-us"][gender]
    return options[rank % len(options)]


def espeak_voice(openai_voice: str, language: str | None) -> str:
    """The espeak-ng voice name (language plus variant, e.g. ``de+f3``) for an OpenAI name in ``language``."""
    gender, rank = _gender_rank(openai_voice)
    tag = normalize_language(language)
    variant = _ESPEAK_VARIANTS[gender][rank]
    name = _ESPEAK_LANGUAGES.get(tag, tag)
    return f"{name}+{variant}" if variant else name


@dataclass(frozen=True)
class VoiceChoice:
    engine: str  # "piper", "kokoro" or "espeak"
    voice: str  # that engine's voice
    language: str  # as normalize_language gives it


def choose_voice(
    openai_voice: str, language: str | None, engines: Sequence[str], languages: Mapping[str, frozenset[str]]
) -> VoiceChoice:
    """The first of ``engines`` that speaks ``language`` (ISO 639 codes per engine in ``languages``), and its
    voice for ``openai_voice``. A language none of them speaks (Whisper hears a few that espeak-ng does not, such
    as Yoruba or Khmer) is spoken in English: an answer in the wrong accent beats silence."""
    tag = normalize_language(language)
    primary = tag.split("-")[0]
    names = {primary, _ESPEAK_LANGUAGES.get(primary, primary)}
    engine = next((e for e in engines if names & languages.get(e, frozenset())), None)
    if engine is None:
        if primary == "en":
            engine = engines[-1]
        else:
            return choose_voice(openai_voice, "en", engines, languages)
    if engine == "piper":
        voice = PIPER_VOICE
    elif engine == "kokoro":
        voice = kokoro_voice(openai_voice, tag)
    else:
        voice = espeak_voice(openai_voice, tag)
    return VoiceChoice(engine, voice, tag)


class Synthesizers:
    """Engines behind one :class:`SpeechSynthesizer`: each call goes to the first, in the mapping's order, that
    speaks its language.

    Thread-safe as its engines are (each serializes only its espeak-ng use).
    """

    def __init__(self, engines: Mapping[str, SpeechSynthesizer]) -> None:
        self.engines = dict(engines)
        self._languages = {name: engine.languages() for name, engine in self.engines.items()}

    @property
    def id(self) -> str:
        return "+".join(engine.id for engine in self.engines.values())

    def languages(self) -> frozenset[str]:
        return frozenset().union(*self._languages.values())

    def choose(self, openai_voice: str, language: str | None) -> VoiceChoice:
        return choose_voice(openai_voice, language, tuple(self.engines), self._languages)

    def first_piece_words(self, voice: str, language: str | None = None) -> int:
        return self.engines[self.choose(voice, language).engine].first_piece_words(voice, language)

    def synthesize(self, text: str, voice: str, speed: float = 1.0, language: str | None = None) -> SpeechChunk:
        """Speak ``text`` with the engine and voice :meth:`choose` picks; ``speed`` within :data:`SPEED_RANGE`."""
        if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
            raise ValueError(f"speed must be within {SPEED_RANGE[0]} and {SPEED_RANGE[1]}, got {speed}")
        choice = self.choose(voice, language)
        return self.engines[choice.engine].synthesize(text, voice, speed, choice.language)


def load_synthesizers(names: Sequence[str], cache_dir: Path | None = None) -> Synthesizers:
    """The engines ``names`` (in order of preference), each loaded once per process and shared by every caller.

    Blocking (seconds on first use): call it from a worker thread. ``cache_dir`` defaults to Parley's cache;
    Kokoro's voices must have been installed there (``python -m parley.engines.kokoro_tts``).
    """
    known = get_args(SynthesizerName)
    if not names or len(set(names)) != len(names) or not set(names) <= set(known):
        raise ValueError(f"expected distinct speech synthesizers among {', '.join(known)}, got {list(names)}")
    # Imported here: each engine pulls in its runtime, and the engines import this module for the mapping.
    from ..engines.espeak_tts import load_espeak

    engines: dict[str, SpeechSynthesizer] = {}
    for name in names:
        if name == "piper":
            from ..engines.piper_tts import load_piper

            engines[name] = load_piper()
        elif name == "kokoro":
            from ..engines.kokoro_tts import load_kokoro

            engines[name] = load_kokoro(cache_dir)
        else:
            engines[name] = load_espeak()
    return Synthesizers(engines)
