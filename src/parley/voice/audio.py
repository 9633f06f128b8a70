"""The Realtime API's audio formats: decoding, encoding and resampling, chunk by chunk.

``pcm16`` is 16-bit little-endian mono at 24 kHz; ``g711_ulaw`` and ``g711_alaw`` are 8-bit G.711 at 8 kHz.
Samples cross this module as int16 numpy arrays at the format's rate, except what the listening models take
(float32 at 16 kHz). G.711 follows ITU-T G.711 as in the Sun reference code (the one ``audioop`` used), done
with lookup tables: no maintained PyPI package does it (``g711`` is an sdist-only C extension last released
in 2021; ``audioop-lts`` needs Python 3.13).
"""

from __future__ import annotations

import numpy as np
import soxr

from ..engines.speech import LISTEN_RATE, SPEAK_RATE
from ..realtime.session_config import AudioFormatName

SAMPLE_RATES: dict[AudioFormatName, int] = {"pcm16": 24_000, "g711_ulaw": 8_000, "g711_alaw": 8_000}
_BYTES_PER_SAMPLE: dict[AudioFormatName, int] = {"pcm16": 2, "g711_ulaw": 1, "g711_alaw": 1}
_PCM16 = np.dtype("<i2")


def bytes_per_ms(fmt: AudioFormatName) -> int:
    return SAMPLE_RATES[fmt] // 1000 * _BYTES_PER_SAMPLE[fmt]


def duration_ms(n_bytes: int, fmt: AudioFormatName) -> float:
    return n_bytes / bytes_per_ms(fmt)


def _all_int16() -> np.ndarray:
    # Ordered by the uint16 view of each value, so an int16 array's .view(np.uint16) indexes the tables.
    return np.arange(65536).astype(np.uint16).view(np.int16).astype(np.int32)


def _ulaw_tables() -> tuple[np.ndarray, np.ndarray]:
    x = _all_int16() >> 2  # µ-law codes 14-bit magnitudes
    mask = np.where(x < 0, 0x7F, 0xFF)
    biased = np.minimum(np.abs(x), 8159) + 0x21
    seg = np.searchsorted([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], biased)
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((biased >> (seg + 1)) & 0x0F)) ^ mask

    u = ~np.arange(256) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    linear = np.where(u & 0x80, 0x84 - t, t - 0x84)
    return code.astype(np.uint8), linear.astype(np.int16)


def _alaw_tables() -> tuple[np.ndarray, np.ndarray]:
    x = _all_int16() >> 3  # A-law codes 13-bit magnitudes
    negative = x < 0
    magnitude = np.where(negative, -x - 1, x)
    seg = np.searchsorted([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], magnitude)
    quant = (magnitude >> np.maximum(seg, 1)) & 0x0F
    code = ((seg << 4) | quant) ^ np.where(negative, 0x55, 0xD5)

    a = np.arange(256) ^ 0x55
    seg_a = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg_a == 0, t + 8, (t + 0x108) << np.maximum(seg_a - 1, 0))
    linear = np.where(a & 0x80, t, -t)
    return code.astype(np.uint8), linear.astype(np.int16)


_ENCODE: dict[AudioFormatName, np.ndarray] = {}
_DECODE: dict[AudioFormatName, np.ndarray] = {}
_ENCODE["g711_ulaw"], _DECODE["g711_ulaw"] = _ulaw_tables()
_ENCODE["g711_alaw"], _DECODE["g711_alaw"] = _alaw_tables()


def decode(data: bytes, fmt: AudioFormatName) -> np.ndarray:
    """Bytes of ``fmt`` to int16 samples at the format's rate; pcm16 needs an even length."""
    if fmt == "pcm16":
        return np.frombuffer(data, dtype=_PCM16).astype(np.int16)
    return _DECODE[fmt][np.frombuffer(data, dtype=np.uint8)]


def encode(samples: np.ndarray, fmt: AudioFormatName) -> bytes:
    """int16 samples at the format's rate to bytes of ``fmt``."""
    samples = np.asarray(samples, dtype=np.int16)
    if fmt == "pcm16":
        return samples.astype(_PCM16, copy=False).tobytes()
    return _ENCODE[fmt][samples.view(np.uint16)].tobytes()


class StreamDecoder:
    """Decodes one session's appended chunks, which may split a pcm16 sample between two appends."""

    def __init__(self, fmt: AudioFormatName) -> None:
        self.format = fmt
        self._carry = b""

    def decode(self, chunk: bytes) -> np.ndarray:
        data = self._carry + chunk if self._carry else chunk
        usable = len(data) - len(data) % _BYTES_PER_SAMPLE[self.format]
        self._carry = data[usable:]
        return decode(data[:usable], self.format)

    def clear(self) -> None:
        self._carry = b""


def _resample(stream: soxr.ResampleStream, samples: np.ndarray, last: bool) -> np.ndarray:
    out = stream.resample_chunk(samples, last=last)
    if last:
        stream.clear()  # soxr refuses input after a last chunk; start the next stretch of audio afresh
    return out


class InputResampler:
    """int16 at the input format's rate to float32 at 16 kHz, streaming so chunk boundaries add no clicks."""

    def __init__(self, fmt: AudioFormatName) -> None:
        self._stream = soxr.ResampleStream(SAMPLE_RATES[fmt], LISTEN_RATE, 1, dtype="float32")

    def process(self, samples: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Resample the next chunk; ``last`` flushes what the filter still holds (then the stream restarts)."""
        audio = samples.astype(np.float32) * np.float32(1 / 32768)
        return _resample(self._stream, audio, last)

    def clear(self) -> None:
        self._stream.clear()


class OutputResampler:
    """int16 at 24 kHz (what synthesis returns) to int16 at the output format's rate, streaming."""

    def __init__(self, fmt: AudioFormatName) -> None:
        rate = SAMPLE_RATES[fmt]
        # float32 inside: soxr dithers int16 output at random, so chunked and one-shot would differ.
        self._stream = None if rate == SPEAK_RATE else soxr.ResampleStream(SPEAK_RATE, rate, 1, dtype="float32")

    def process(self, samples: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Resample the next chunk; ``last`` flushes what the filter still holds (then the stream restarts)."""
        samples = np.asarray(samples, dtype=np.int16)
        if self._stream is None:
            return samples
        out = _resample(self._stream, samples.astype(np.float32), last)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    def clear(self) -> None:
        if self._stream is not None:
            self._stream.clear()
