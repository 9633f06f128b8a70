"""Every language Whisper can report gets a voice (its own, or English where no engine speaks it), and
docs/languages.md names exactly the languages that fall back to English."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES as WHISPER_LANGUAGES
from pydantic import ValidationError

from parley.config import PROFILE_SYNTHESIZERS, Settings
from parley.realtime.context import language_name
from parley.voice.voices import PIPER_VOICE, VoiceChoice, load_synthesizers

DOCS = Path(__file__).resolve().parents[1] / "docs" / "languages.md"


@pytest.fixture(scope="module", params=["fast", "default"])
def synthesizers(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return load_synthesizers(PROFILE_SYNTHESIZERS[request.param])


def _english_fallbacks(synthesizers) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(
        code
        for code in WHISPER_LANGUAGES
        if code != "en" and synthesizers.choose("alloy", code).language.startswith("en")
    )


def test_every_whisper_language_gets_a_voice_that_speaks_it_or_english(synthesizers) -> None:  # type: ignore[no-untyped-def]
    for code in WHISPER_LANGUAGES:
        choice = synthesizers.choose("cedar", code)
        spoken = choice.language.split("-")[0]
        languages = synthesizers.engines[choice.engine].languages()
        assert spoken in languages or {"zh": "cmn", "no": "nb", "nn": "nb"}.get(spoken) in languages, (code, choice)


def test_switching_voices_for_the_callers_language() -> None:
    default = load_synthesizers(PROFILE_SYNTHESIZERS["default"])
    assert default.choose("alloy", "fr") == VoiceChoice("kokoro", "ff_siwis", "fr")
    assert default.choose("alloy", "pt") == VoiceChoice("kokoro", "pf_dora", "pt-br")
    assert default.choose("echo", "pt") == VoiceChoice("kokoro", "pm_alex", "pt-br")
    assert default.choose("alloy", "de") == VoiceChoice("espeak", "de+f3", "de")  # Kokoro lacks German
    assert default.choose("alloy", "nn") == VoiceChoice("espeak", "nb+f3", "nn")  # no Nynorsk: Bokmål
    assert default.choose("alloy", "yo") == VoiceChoice("kokoro", "af_heart", "en-us")  # nobody speaks Yoruba
    fast = load_synthesizers(PROFILE_SYNTHESIZERS["fast"])
    assert fast.choose("alloy", "fr") == VoiceChoice("espeak", "fr+f3", "fr")
    assert fast.choose("alloy", "yo").engine == "piper"
    # The first spoken piece is as short as the chosen engine's speed allows.
    assert fast.first_piece_words("alloy", "en") == 3
    assert default.first_piece_words("alloy", "en") == 4
    assert default.first_piece_words("alloy", "de") == 3
    # A language no engine speaks is spoken (in English), not refused.
    assert default.synthesize("Ẹ ku aarọ.", "alloy", 1.0, "yo").duration_ms > 0


def test_docs_name_the_languages_spoken_in_english(synthesizers) -> None:  # type: ignore[no-untyped-def]
    listed = re.search(r"<!-- fallback-languages: ([a-z ]+) -->", DOCS.read_text())
    assert listed is not None
    assert sorted(listed.group(1).split()) == _english_fallbacks(synthesizers)


def test_language_names_for_the_reply_line() -> None:
    assert [language_name(code) for code in ("fr", "pt", "pt-BR", "el", "jw", "yue", "xx")] == [
        "French", "Portuguese", "Portuguese", "Modern Greek", "Javanese", "Yue Chinese", "xx",
    ]  # fmt: skip


def test_an_operator_order_speaks_english_with_piper_and_the_rest_with_kokoro(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PARLEY_SYNTHESIZERS", "piper, kokoro,espeak")
    settings = Settings(profile="default")
    assert settings.synthesizer_names == ("piper", "kokoro", "espeak")
    assert Settings(profile="default", synthesizers=[]).synthesizer_names == ("kokoro", "espeak")
    mixed = load_synthesizers(settings.synthesizer_names)
    assert mixed.choose("shimmer", "en") == VoiceChoice("piper", PIPER_VOICE, "en-us")
    assert mixed.choose("shimmer", "fr") == VoiceChoice("kokoro", "ff_siwis", "fr")
    assert mixed.choose("shimmer", "de").engine == "espeak"
    assert mixed.choose("shimmer", "yo").engine == "piper"  # nobody speaks Yoruba: English, by the first
    assert mixed.first_piece_words("alloy", "en") == 3
    assert mixed.first_piece_words("alloy", "fr") == 4
    assert mixed.synthesize("Bonjour, comment allez-vous ?", "alloy", 1.0, "fr").duration_ms > 500


def test_synthesizer_names_are_checked() -> None:
    with pytest.raises(ValidationError, match="at most once"):
        Settings(synthesizers=["piper", "piper"])
    with pytest.raises(ValidationError):
        Settings(synthesizers=["festival"])
    with pytest.raises(ValueError, match="distinct speech synthesizers"):
        load_synthesizers([])
    with pytest.raises(ValueError, match="distinct speech synthesizers"):
        load_synthesizers(["piper", "festival"])
