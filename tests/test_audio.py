"""The Realtime API's audio formats: G.711 against the reference coder, odd-byte carry, and streaming resampling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from parley.voice.audio import (
    InputResampler,
    OutputResampler,
    StreamDecoder,
    bytes_per_ms,
    decode,
    duration_ms,
    encode,
)

G711 = ["g711_ulaw", "g711_alaw"]
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def split_randomly(data: np.ndarray | bytes, seed: int) -> list:
    cuts = np.sort(np.random.default_rng(seed).choice(np.arange(1, len(data)), size=40, replace=False))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_sizes_and_durations() -> None:
    assert bytes_per_ms("pcm16") == 48
    assert bytes_per_ms("g711_ulaw") == bytes_per_ms("g711_alaw") == 8
    assert duration_ms(4800, "pcm16") == 100
    assert duration_ms(4000, "g711_alaw") == 500


def test_pcm16_is_little_endian_and_exact() -> None:
    assert encode(np.array([1, -2, 32767, -32768]), "pcm16") == b"\x01\x00\xfe\xff\xff\x7f\x00\x80"
    np.testing.assert_array_equal(decode(encode(ALL_INT16, "pcm16"), "pcm16"), ALL_INT16)


@pytest.mark.parametrize(
    ("fmt", "codes", "linear"),
    [
        # Sun/CCITT reference coder (16-bit scale): silence, full scale and a mid-segment value each way.
        ("g711_ulaw", [0xFF, 0x7F, 0x80, 0x00, 0xEF, 0x6F], [0, 0, 32124, -32124, 132, -132]),
        ("g711_alaw", [0xD5, 0x55, 0xAA, 0x2A, 0xC5, 0x45], [8, -8, 32256, -32256, 264, -264]),
    ],
)
def test_g711_reference_values(fmt: str, codes: list[int], linear: list[int]) -> None:
    np.testing.assert_array_equal(decode(bytes(codes), fmt), linear)
    # Silence and full scale encode to the standard's codes (µ-law's "negative zero" 0x7F is never produced).
    assert encode(np.array([0, 32767, -32768]), fmt) == bytes(
        [0xFF, 0x80, 0x00] if fmt == "g711_ulaw" else [0xD5, 0xAA, 0x2A]
    )


@pytest.mark.parametrize("fmt", G711)
def test_g711_matches_the_reference_coder_for_every_value(fmt: str) -> None:
    # audioop wraps the Sun reference implementation of G.711; it exists up to Python 3.12.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    to_code, to_linear = (
        (audioop.lin2ulaw, audioop.ulaw2lin) if fmt == "g711_ulaw" else (audioop.lin2alaw, audioop.alaw2lin)
    )
    assert encode(ALL_INT16, fmt) == to_code(ALL_INT16.tobytes(), 2)
    np.testing.assert_array_equal(decode(ALL_CODES, fmt), np.frombuffer(to_linear(ALL_CODES, 2), np.int16))


@pytest.mark.parametrize("fmt", G711)
def test_g711_properties(fmt: str) -> None:
    levels = decode(ALL_CODES, fmt)
    # Every code decodes to a level that encodes back to a code of that same level.
    np.testing.assert_array_equal(decode(encode(levels, fmt), fmt), levels)
    # Quantizing never reorders: a louder input never decodes quieter.
    quantized = decode(encode(ALL_INT16, fmt), fmt).astype(np.int32)
    assert np.all(np.diff(quantized) >= 0)
    # Companding keeps the SNR near 38 dB whatever the level (-6, -20 and -34 dBFS here): its whole point.
    for amplitude in (0.5, 0.1, 0.02):
        signal = tone(1013, 8000, amplitude=amplitude)
        error = decode(encode(signal, fmt), fmt) - signal.astype(np.float64)
        assert 10 * np.log10(np.sum(signal.astype(np.float64) ** 2) / np.sum(error**2)) > 34


@pytest.mark.parametrize("fmt", ["pcm16", *G711])
def test_stream_decoder_carries_a_split_sample(fmt: str) -> None:
    whole = encode(tone(440, 24_000, 0.2), fmt)
    decoder = StreamDecoder(fmt)
    pieces = [decoder.decode(chunk) for chunk in split_randomly(whole, seed=1)]
    np.testing.assert_array_equal(np.concatenate(pieces), decode(whole, fmt))


def test_stream_decoder_clear_drops_the_dangling_byte() -> None:
    decoder = StreamDecoder("pcm16")
    assert len(decoder.decode(b"\x01\x02\x03")) == 1
    decoder.clear()
    np.testing.assert_array_equal(decoder.decode(b"\x05\x00"), [5])


@pytest.mark.parametrize(("fmt", "rate"), [("pcm16", 24_000), ("g711_ulaw", 8_000)])
def test_input_resampler_reaches_16k_float(fmt: str, rate: int) -> None:
    samples = tone(1000, rate)
    out = InputResampler(fmt).process(samples, last=True)
    assert out.dtype == np.float32
    assert len(out) == 16_000
    assert peak_hz(out, 16_000) == pytest.approx(1000, abs=1)
    # Full scale int16 maps to about +-1.0: the 0.5-amplitude tone stays at 0.5 away from the filter's edges.
    assert np.max(np.abs(out[1000:-1000])) == pytest.approx(0.5, abs=0.01)


def test_output_resampler_24k_to_8k_keeps_the_tone() -> None:
    samples = tone(1000, 24_000)
    out = OutputResampler("g711_alaw").process(samples, last=True)
    assert out.dtype == np.int16
    assert len(out) == 8_000
    assert peak_hz(out, 8_000) == pytest.approx(1000, abs=1)
    assert np.max(np.abs(out[500:-500])) == pytest.approx(0.5 * 32767, rel=0.01)


def test_output_resampler_passes_pcm16_through() -> None:
    samples = tone(1000, 24_000, 0.1)
    np.testing.assert_array_equal(OutputResampler("pcm16").process(samples), samples)


@pytest.mark.parametrize(
    ("resampler", "samples"),
    [
        (lambda: InputResampler("pcm16"), tone(1000, 24_000) // 2 + tone(3300, 24_000) // 2),
        (lambda: InputResampler("g711_ulaw"), tone(700, 8_000)),
        (lambda: OutputResampler("g711_ulaw"), tone(1000, 24_000) // 2 + tone(3300, 24_000) // 2),
    ],
)
def test_chunked_resampling_equals_one_shot(resampler, samples: np.ndarray) -> None:
    one_shot = resampler().process(samples, last=True)
    streaming = resampler()
    chunks = [streaming.process(chunk) for chunk in split_randomly(samples, seed=2)]
    chunks.append(streaming.process(samples[:0], last=True))
    chunked = np.concatenate(chunks)
    assert len(chunked) == len(one_shot)
    # Within one int16 step (or float32 rounding): chunk boundaries change nothing audible.
    atol = 1 if one_shot.dtype == np.int16 else 1e-6
    np.testing.assert_allclose(chunked.astype(np.float64), one_shot.astype(np.float64), atol=atol)


def test_a_flushed_resampler_takes_the_next_stretch() -> None:
    resampler = OutputResampler("g711_ulaw")
    first = resampler.process(tone(1000, 24_000, 0.1), last=True)
    second = resampler.process(tone(1000, 24_000, 0.1), last=True)
    np.testing.assert_array_equal(first, second)
