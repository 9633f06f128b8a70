"""An answer's first spoken piece is synthesized with the model held, only the first, and a slow one not for
long; later pieces are cut short when the voice would otherwise fall behind (unit tests: a scripted model and a
synthesizer that notes whether the model was held while it worked)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from parley.engines.llm import TextStream, ToolCallDelta
from parley.engines.speech import SpeechChunk
from parley.realtime.answer import FIRST_PIECE_HOLD_S, AnswerStream
from parley.voice.speaker import Speaker, SpokenClause, VoiceSettings

ANSWER = "Sure, I can do that for you. The timer is set for five minutes from now. Anything else?"


class _NotingSynthesizer:
    def __init__(self, stream: TextStream, seconds: float = 0.0, audio_ms: int = 100) -> None:
        self.stream = stream
        self.seconds = seconds  # how long each synthesis takes
        self.audio_ms = audio_ms  # how long each piece's audio plays
        self.held_while_speaking: list[tuple[str, bool]] = []  # noted as each synthesis ends

    def synthesize(self, text: str, voice: str, speed: float = 1.0, language: str | None = None) -> SpeechChunk:
        time.sleep(self.seconds)
        self.held_while_speaking.append((text, self.stream.hold.held))
        return SpeechChunk(np.zeros(self.audio_ms * 24, dtype=np.int16))

    def first_piece_words(self, voice: str, language: str | None = None) -> int:
        return 4


async def _deltas() -> AsyncIterator[str | ToolCallDelta]:
    for word in ANSWER.split():
        yield word + " "


async def test_only_the_first_piece_is_spoken_with_the_model_held() -> None:
    stream = TextStream(_deltas())
    synthesizer = _NotingSynthesizer(stream)
    with ThreadPoolExecutor(1) as pool:
        speaker = Speaker(synthesizer, VoiceSettings("alloy", 1.0, "en", "pcm16"), lambda s, last: s.tobytes(), pool)
        answer = AnswerStream(stream, speaker)
        spoken = [piece.text async for piece in answer.pieces() if isinstance(piece, SpokenClause)]
        await answer.close()
    assert len(spoken) >= 3
    assert synthesizer.held_while_speaking[0] == ("Sure, I can do", True)
    assert not any(held for _, held in synthesizer.held_while_speaking[1:])
    assert not stream.hold.held  # released once the first piece was spoken


async def test_a_slow_first_piece_holds_the_model_only_briefly() -> None:
    stream = TextStream(_deltas())
    synthesizer = _NotingSynthesizer(stream, seconds=FIRST_PIECE_HOLD_S + 0.3)
    with ThreadPoolExecutor(1) as pool:
        speaker = Speaker(synthesizer, VoiceSettings("alloy", 1.0, "en", "pcm16"), lambda s, last: s.tobytes(), pool)
        answer = AnswerStream(stream, speaker)
        first = await anext(aiter(answer.pieces()))
        await answer.close()
    assert isinstance(first, SpokenClause) and first.text == "Sure, I can do"
    assert synthesizer.held_while_speaking[0] == ("Sure, I can do", False)  # released before it was done


async def _spoken(synthesizer: _NotingSynthesizer) -> list[str]:
    with ThreadPoolExecutor(1) as pool:
        speaker = Speaker(synthesizer, VoiceSettings("alloy", 1.0, "en", "pcm16"), lambda s, last: s.tobytes(), pool)
        answer = AnswerStream(synthesizer.stream, speaker)
        spoken = [piece.text.strip() async for piece in answer.pieces() if isinstance(piece, SpokenClause)]
        await answer.close()
    return spoken


async def test_a_voice_well_ahead_of_the_listener_keeps_its_planned_pieces() -> None:
    spoken = await _spoken(_NotingSynthesizer(TextStream(_deltas()), audio_ms=5000))
    planned = ["Sure, I can do", "that for you.", "The timer is set for five minutes from now.", "Anything else?"]
    assert spoken == planned


async def test_a_voice_falling_behind_speaks_in_short_pieces() -> None:
    # Each piece plays for less time than the next takes to make: every piece after the first is cut as soon as
    # it has the fewest words a piece cut for time may have.
    spoken = await _spoken(_NotingSynthesizer(TextStream(_deltas()), seconds=0.15, audio_ms=100))
    assert spoken[0] == "Sure, I can do"
    assert " ".join(spoken) == ANSWER
    assert all(len(piece.split()) <= 2 for piece in spoken[1:])
