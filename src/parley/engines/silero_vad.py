"""Silero VAD v5 on onnxruntime: P(speech) for each 32 ms frame of 16 kHz audio.

One model (one ``InferenceSession``) serves every session; each audio stream keeps its own
:class:`SileroState`. ``InferenceSession.run`` is safe to call from several threads at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .. import models
from .speech import LISTEN_RATE

# Byte-identical to silero-vad 6.2.3's silero_vad/data/silero_vad.onnx; see requirements/models-listening.txt.
SOURCE = "package:pipecat-ai/pipecat/audio/vad/data/silero_vad.onnx"
FRAME_SAMPLES = 512
# v5 scores each frame together with the last 64 samples before it; without them accuracy drops.
CONTEXT_SAMPLES = 64
_SAMPLE_RATE = np.array(LISTEN_RATE, dtype=np.int64)


@dataclass
class SileroState:
    """One stream's LSTM state and the tail of its previous frame."""

    lstm: np.ndarray = field(default_factory=lambda: np.zeros((2, 1, 128), dtype=np.float32))
    context: np.ndarray = field(default_factory=lambda: np.zeros(CONTEXT_SAMPLES, dtype=np.float32))


class SileroVad:
    def __init__(self, path: Path) -> None:
        options = ort.SessionOptions()
        # One 32 ms frame is a tiny graph: extra threads cost more in hand-offs than they save.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    @classmethod
    def from_source(cls, source: str = SOURCE) -> SileroVad:
        return cls(models.resolve(source))

    @property
    def frame_samples(self) -> int:
        return FRAME_SAMPLES

    def new_state(self) -> SileroState:
        return SileroState()

    def speech_probability(self, frame: np.ndarray, state: SileroState) -> float:
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"Silero VAD takes frames of {FRAME_SAMPLES} samples, got shape {frame.shape}")
        window = np.concatenate((state.context, frame.astype(np.float32, copy=False)))[np.newaxis]
        probability, state.lstm = self._session.run(None, {"input": window, "state": state.lstm, "sr": _SAMPLE_RATE})
        state.context = window[0, -CONTEXT_SAMPLES:]
        return float(probability[0, 0])
