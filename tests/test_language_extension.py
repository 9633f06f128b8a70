"""The opt-in ``language`` field on transcription events: present when asked for, and never otherwise."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conformance.validator import DEFAULT_ALLOWED_EXTRAS, EventValidator
from tests.support.client import sdk_client
from tests.support.server import RunningServer
from tests.support.speech import silence, utterance


@pytest.mark.parametrize("opt_in", [True, False])
async def test_transcription_names_the_language_only_on_request(server: RunningServer, opt_in: bool) -> None:
    query = {"parley_language": "true"} if opt_in else {}
    allowed = (*DEFAULT_ALLOWED_EXTRAS, "language") if opt_in else DEFAULT_ALLOWED_EXTRAS
    validator = EventValidator("ga", allowed)
    question = utterance("commands_en", "en-what_s_the_date").samples(24_000)
    client = sdk_client(server)
    async with client.realtime.connect(model="gpt-realtime", extra_query=query) as conn:
        session = {
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": None}},
        }
        await conn.send({"type": "session.update", "session": session})
        audio = base64.b64encode(question.tobytes() + silence(200).tobytes()).decode("ascii")
        await conn.send({"type": "input_audio_buffer.append", "audio": audio})
        await conn.send({"type": "input_audio_buffer.commit"})
        while True:
            event = json.loads(await conn.recv_bytes())
            assert not validator.validate_event(event), validator.validate_event(event)
            if event["type"] == "conversation.item.input_audio_transcription.completed":
                break
    await client.close()
    assert "date" in event["transcript"].lower()
    if opt_in:
        assert event["language"] == "en"  # the fast profile's recognizer is English-only
    else:
        assert "language" not in event
