"""The speech recognizers Parley can load by name, each loaded once per process and shared by all sessions."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from . import moonshine, whisper
from .speech import LISTEN_RATE, SpeechRecognizer, VoiceActivityModel

__all__ = ["RECOGNIZERS", "load_recognizer"]

RECOGNIZERS = (moonshine.MOONSHINE_BASE_EN, *whisper.RECOGNIZERS)

_load_lock = threading.Lock()
_loaded: dict[tuple[str, int], SpeechRecognizer] = {}


def load_recognizer(
    name: str, vad: VoiceActivityModel, cache_dir: Path | None = None, threads: int | None = None
) -> SpeechRecognizer:
    """The process-wide recognizer ``name`` (one of :data:`RECOGNIZERS`); ``vad`` finds Moonshine's speech span.

    Blocking (a first start writes model files into the cache): call it from a worker thread.
    """
    if name in whisper.RECOGNIZERS:
        return whisper.load_recognizer(name, cache_dir, threads)
    if name != moonshine.MOONSHINE_BASE_EN:
        raise ValueError(f"unknown speech recognizer {name!r}; expected one of {', '.join(RECOGNIZERS)}")
    threads = threads or whisper.DEFAULT_THREADS
    with _load_lock:  # held while loading so concurrent first calls load once
        key = (name, threads)
        if key not in _loaded:
            fallback = whisper.load_recognizer(whisper.TINY_EN, cache_dir, threads)
            fallback.transcribe(np.zeros(LISTEN_RATE, dtype=np.float32))  # warm: its first use is a caller's turn
            folder = moonshine.model_dir(cache_dir)
            _loaded[key] = moonshine.MoonshineRecognizer(folder, vad, fallback=fallback, threads=threads)
        return _loaded[key]
