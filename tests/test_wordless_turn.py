"""A turn the VAD detected but the recognizer heard no words in (a click, a breath) is not answered: the model is
not asked, and the response ends with nothing said. A client that asks for a response itself still gets one."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from parley.engines.llm import GenerationRequest
from parley.realtime.conversation import Conversation
from parley.realtime.dialect import Dialect
from parley.realtime.early_answer import EarlyAnswer
from parley.realtime.items import ContentPart, Item
from parley.realtime.response import Response
from parley.realtime.response_params import GAResponseCreate
from parley.realtime.session_config import SessionConfig
from parley.realtime.turn_timing import TurnTiming
from tests.conformance.validator import assert_conformant
from tests.support.scripted import RecordingSink, ScriptedModel, early_answer_session


def _user_turn(transcript: str) -> Item:
    part = ContentPart(type="input_audio", audio=bytes(4800), audio_format="pcm16", transcript=transcript)
    return Item(id="item_turn", type="message", role="user", content=[part])


async def _answer(transcript: str, *, detected_by_vad: bool) -> tuple[dict[str, Any], ScriptedModel]:
    config = SessionConfig.initial(Dialect.GA, id="sess_x", model="m", expires_at=0, instructions="Be brief.")
    config = config.model_copy(update={"modalities": ["text"]})
    sink = RecordingSink(config)
    conversation = Conversation()
    user_turn = _user_turn(transcript)
    previous = conversation.insert(user_turn)
    sink.item_added(user_turn, previous)
    sink.item_done(user_turn, previous)
    model = ScriptedModel(["Sure."])
    turn = TurnTiming("item_turn", 1000, time.monotonic()) if detected_by_vad else None
    params = GAResponseCreate().to_params(config, conversation)
    await Response(sink, params, conversation, model, turn=turn).start()  # type: ignore[arg-type]
    assert_conformant(sink.events, "ga")
    return sink.events[-1]["response"], model


@pytest.mark.parametrize("transcript", ["", "  "])
async def test_a_vad_turn_without_words_is_not_answered(transcript: str) -> None:
    response, model = await _answer(transcript, detected_by_vad=True)
    assert response["status"] == "completed" and response["output"] == []
    assert model.requests == []


async def test_a_vad_turn_with_words_is_answered() -> None:
    response, model = await _answer("What time is it?", detected_by_vad=True)
    assert response["output"][0]["content"][0]["text"] == "Sure."
    assert len(model.requests) == 1


async def test_a_response_the_client_asked_for_answers_even_a_wordless_turn() -> None:
    response, model = await _answer("", detected_by_vad=False)
    assert response["output"][0]["content"][0]["text"] == "Sure."
    assert len(model.requests) == 1


async def test_an_early_answer_to_a_pause_without_words_does_not_start_the_model() -> None:
    model = ScriptedModel(["Sure."])
    session = early_answer_session("", model)
    early = EarlyAnswer(session, "item_turn", np.zeros(16_000, dtype=np.float32))
    question = GenerationRequest(messages=[{"role": "user", "content": ""}])
    assert await early.take(question, None) is None
    assert model.requests == []
