"""Non-speech audio at 16 kHz for the recognizers' tests: silence and low noise they must not hear as words."""

from __future__ import annotations

import numpy as np

from parley.engines.speech import LISTEN_RATE


def pink_noise(n: int, rms: float, seed: int = 0) -> np.ndarray:
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    noise = np.fft.irfft(spectrum / np.sqrt(np.arange(len(spectrum)) + 1.0), n)
    return (noise / noise.std() * rms).astype(np.float32)


NON_SPEECH = {
    "silence": np.zeros(LISTEN_RATE, dtype=np.float32),
    "white noise": (np.random.default_rng(1).standard_normal(2 * LISTEN_RATE) * 0.003).astype(np.float32),
    "pink noise": pink_noise(2 * LISTEN_RATE, 0.01),
}
