"""``parley bench recognizers``: the speech recognizers on recorded speech, in process, one clip at a time.

Per recognizer and folder: word error rate (normalized as :mod:`parley.bench.wer` does), how many clips a
multilingual recognizer heard as another language than the manifest's, and milliseconds per clip. Each clip is
given whole, as the server gives a committed turn; the first call of each recognizer is a warm-up, not timed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..engines.recognizers import load_recognizer
from ..engines.silero_vad import SileroVad
from ..engines.speech import SpeechRecognizer
from .recordings import Utterance, read_wav, to_listen_rate
from .wer import corpus_wer

__all__ = ["FolderResult", "markdown", "run"]


@dataclass(frozen=True)
class FolderResult:
    recognizer: str
    folder: str
    clips: int
    wer: float
    other_language: int | None  # None: an English-only recognizer, which always says English
    ms_p50: float
    ms_mean: float
    audio_s_mean: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _listen_audio(utterance: Utterance) -> np.ndarray:
    return np.ascontiguousarray(to_listen_rate(*read_wav(utterance.audio)), dtype=np.float32)


def _folder_result(
    name: str, recognizer: SpeechRecognizer, utterances: Sequence[Utterance], on_clip: Callable[[str], None]
) -> FolderResult:
    hypotheses: list[str] = []
    languages: list[str | None] = []
    times_ms: list[float] = []
    for utterance in utterances:
        audio = _listen_audio(utterance)
        start = time.perf_counter()
        transcript = recognizer.transcribe(audio)
        times_ms.append((time.perf_counter() - start) * 1000)
        hypotheses.append(transcript.text)
        languages.append(transcript.language)
        on_clip(f"{name} {utterance.folder}/{utterance.id}: {transcript.text!r} ({transcript.language})")
    language = utterances[0].lang
    return FolderResult(
        recognizer=name,
        folder=utterances[0].folder,
        clips=len(utterances),
        wer=corpus_wer([u.text for u in utterances], hypotheses, language),
        other_language=sum(found != u.lang for found, u in zip(languages, utterances, strict=True))
        if recognizer.multilingual
        else None,
        ms_p50=statistics.median(times_ms),
        ms_mean=statistics.fmean(times_ms),
        audio_s_mean=statistics.fmean(u.duration_s for u in utterances),
    )


def run(
    names: Sequence[str],
    utterances: Sequence[Utterance],
    threads: int | None = None,
    on_clip: Callable[[str], None] = lambda line: None,
) -> list[FolderResult]:
    """Each recognizer over each folder's utterances (in manifest order). Blocking: minutes of CPU."""
    folders: dict[str, list[Utterance]] = {}
    for utterance in utterances:
        folders.setdefault(utterance.folder, []).append(utterance)
    vad = SileroVad.from_source()
    results = []
    for name in names:
        recognizer = load_recognizer(name, vad, threads=threads)
        recognizer.transcribe(_listen_audio(utterances[0]))  # warm-up: first calls allocate
        results += [_folder_result(name, recognizer, clips, on_clip) for clips in folders.values()]
    return results


def markdown(results: Sequence[FolderResult]) -> str:
    lines = [
        "| recognizer | folder | clips | WER | heard as another language | ms per clip p50 | mean | audio s mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        other = "-" if r.other_language is None else str(r.other_language)
        lines.append(
            f"| {r.recognizer} | {r.folder} | {r.clips} | {r.wer:.3f} | {other} | {r.ms_p50:.0f} | {r.ms_mean:.0f} "
            f"| {r.audio_s_mean:.1f} |"
        )
    return "\n".join(lines) + "\n"
