"""Smart Turn v3.2 on onnxruntime: P(the speaker has finished), from the last 8 s of a turn's audio.

The model takes Whisper's log-mel features (80 mels x 800 frames of 10 ms). They are computed here with
numpy, following the recipe of ``transformers.WhisperFeatureExtractor`` as Pipecat's vendored copy does
(importing pipecat would pull its whole dependency tree); a test checks they are identical to that copy's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.lib.stride_tricks import sliding_window_view

from .. import models
from .speech import LISTEN_RATE

SOURCE = "package:pipecat-ai/pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
WINDOW_SAMPLES = 8 * LISTEN_RATE
_N_FFT = 400
_HOP = 160
_N_MELS = 80


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    # Slaney's scale: linear below 1 kHz, logarithmic above.
    log_part = 15.0 + np.log(np.maximum(hz, 1000.0) / 1000.0) * (27.0 / np.log(6.4))
    return np.where(hz >= 1000.0, log_part, 3.0 * hz / 200.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    log_part = 1000.0 * np.exp((mel - 15.0) * (np.log(6.4) / 27.0))
    return np.where(mel >= 15.0, log_part, 200.0 * mel / 3.0)


def _mel_filters() -> np.ndarray:
    """Slaney-normalised triangular filters, shape (n_fft // 2 + 1, n_mels)."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.float64(0.0)), _hz_to_mel(np.float64(LISTEN_RATE / 2)), _N_MELS + 2))
    bins = np.linspace(0, LISTEN_RATE // 2, _N_FFT // 2 + 1)
    slopes = edges[np.newaxis, :] - bins[:, np.newaxis]
    widths = np.diff(edges)
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    return np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))


_MEL_FILTERS = _mel_filters()
_HANN = np.hanning(_N_FFT + 1)[:-1]  # periodic, as torch.hann_window


def fit_window(audio: np.ndarray) -> np.ndarray:
    """The last 8 s of ``audio``, zero-padded at the start when shorter (as Pipecat feeds the model)."""
    audio = np.asarray(audio, dtype=np.float32)[-WINDOW_SAMPLES:]
    return np.pad(audio, (WINDOW_SAMPLES - len(audio), 0))


def log_mel(window: np.ndarray) -> np.ndarray:
    """Whisper's normalised log-mel features of an 8 s window, float32 of shape (80, 800)."""
    # Zero-mean unit-variance in float32 (padding included), as the reference does before its float64 STFT.
    x = (window - window.mean()) / np.sqrt(window.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), _N_FFT // 2, mode="reflect")
    frames = sliding_window_view(padded, _N_FFT)[::_HOP]
    power = np.abs(np.fft.rfft(frames * _HANN, axis=-1)) ** 2
    mel = np.log10(np.maximum(power @ _MEL_FILTERS, 1e-10))[:-1].T  # Whisper drops the last frame
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)


class SmartTurn:
    def __init__(self, path: Path, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    @classmethod
    def from_source(cls, source: str = SOURCE, threads: int = 1) -> SmartTurn:
        return cls(models.resolve(source), threads)

    def turn_complete_probability(self, audio: np.ndarray) -> float:
        features = log_mel(fit_window(audio))[np.newaxis]
        (probability,) = self._session.run(None, {"input_features": features})
        return float(probability[0, 0])
