"""``parley bench synthesizers``: each profile's voices speaking the shared transcripts, in process, one at a time.

An answer's first audio waits for its first piece: the first few words, cut where the server's
:class:`~parley.voice.clauses.ClauseChunker` cuts them for that voice, synthesized whole. Per profile and folder:
how long that takes and how much audio it makes, and the real-time factor of whole texts (synthesis time over
audio time, summed over the folder), which says whether the pieces after the first keep up with playback. The
texts are the recordings' transcripts, spoken in the manifest's language by the voice the profile picks for it.
The first call of each profile is a warm-up, not timed.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from ..config import PROFILE_SYNTHESIZERS, Profile
from ..voice.clauses import ClauseChunker
from ..voice.voices import Synthesizers, load_synthesizers
from .recordings import Utterance
from .voice_report import stats

__all__ = ["FolderResult", "first_piece", "markdown", "run"]


@dataclass(frozen=True)
class FolderResult:
    profile: str
    voice: str  # the engine and its voice, as "kokoro af_heart"
    folder: str
    texts: int
    first_piece_words_p50: float
    first_piece_ms_p50: float
    first_piece_ms_p95: float
    first_piece_audio_ms_p50: float
    real_time_factor: float  # whole texts: synthesis seconds per second of audio

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def first_piece(text: str, first_piece_words: int) -> str:
    """The first piece the server would speak of ``text`` had the model written it, a word at a time."""
    chunker = ClauseChunker(first_piece_words)
    for word in re.findall(r"\S+\s*", text):
        chunker.add(word)
        if piece := chunker.next_piece():
            return piece
    return chunker.next_piece(final=True) or ""


def _timed_ms(synthesizers: Synthesizers, text: str, voice: str, language: str) -> tuple[float, int]:
    """Milliseconds to synthesize ``text``, and of audio made."""
    start = time.perf_counter()
    chunk = synthesizers.synthesize(text, voice, language=language)
    return (time.perf_counter() - start) * 1000, chunk.duration_ms


def _folder_result(
    profile: str,
    synthesizers: Synthesizers,
    voice: str,
    utterances: Sequence[Utterance],
    on_text: Callable[[str], None],
) -> FolderResult:
    language = utterances[0].lang
    choice = synthesizers.choose(voice, language)
    words = synthesizers.first_piece_words(voice, language)
    piece_words: list[int] = []
    piece_ms: list[float] = []
    piece_audio_ms: list[int] = []
    whole_ms = whole_audio_ms = 0.0
    for utterance in utterances:
        piece = first_piece(utterance.text, words)
        elapsed, audio = _timed_ms(synthesizers, piece, voice, language)
        piece_words.append(len(piece.split()))
        piece_ms.append(elapsed)
        piece_audio_ms.append(audio)
        elapsed, audio = _timed_ms(synthesizers, utterance.text, voice, language)
        whole_ms += elapsed
        whole_audio_ms += audio
        on_text(f"{profile} {utterance.folder}/{utterance.id}: {piece!r} in {piece_ms[-1]:.0f} ms")
    piece_stats = stats(piece_ms)
    return FolderResult(
        profile=profile,
        voice=f"{choice.engine} {choice.voice}",
        folder=utterances[0].folder,
        texts=len(utterances),
        first_piece_words_p50=statistics.median(piece_words),
        first_piece_ms_p50=piece_stats["p50"] or 0.0,
        first_piece_ms_p95=piece_stats["p95"] or 0.0,
        first_piece_audio_ms_p50=statistics.median(piece_audio_ms),
        real_time_factor=whole_ms / whole_audio_ms if whole_audio_ms else 0.0,
    )


def run(
    profiles: Sequence[Profile],
    utterances: Sequence[Utterance],
    voice: str = "alloy",
    on_text: Callable[[str], None] = lambda line: None,
) -> list[FolderResult]:
    """Each profile's voice over each folder's transcripts (in manifest order). Blocking: minutes of CPU."""
    folders: dict[str, list[Utterance]] = {}
    for utterance in utterances:
        folders.setdefault(utterance.folder, []).append(utterance)
    results = []
    for profile in profiles:
        synthesizers = load_synthesizers(PROFILE_SYNTHESIZERS[profile])
        for clips in folders.values():  # warm-up: each engine's first call allocates, once per language
            synthesizers.synthesize(clips[0].text, voice, language=clips[0].lang)
        results += [_folder_result(profile, synthesizers, voice, clips, on_text) for clips in folders.values()]
    return results


def markdown(results: Sequence[FolderResult]) -> str:
    lines = [
        "| profile | voice | folder | texts | first piece words p50 | first piece ms p50 | p95 "
        "| first piece audio ms p50 | real-time factor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.profile} | {r.voice} | {r.folder} | {r.texts} | {r.first_piece_words_p50:g} "
            f"| {r.first_piece_ms_p50:.0f} | {r.first_piece_ms_p95:.0f} | {r.first_piece_audio_ms_p50:.0f} "
            f"| {r.real_time_factor:.2f} |"
        )
    return "\n".join(lines) + "\n"
