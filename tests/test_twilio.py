"""Phone calls through Twilio Media Streams: a real server (fast profile) and a client that behaves as Twilio does,
playing real recordings as a caller at real-time pace and "playing" Parley's answer in real time."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from xml.etree import ElementTree

import httpx
import numpy as np
import pytest
import websockets

from parley.bench.wer import wer
from parley.config import Settings
from parley.telephony.twilio import public_base
from parley.telephony.twilio_signature import signature
from parley.voice import audio as codec
from tests.support.server import RunningServer, running_server
from tests.support.speech import utterance
from tests.support.twilio import TwilioCall, mulaw_8k, onset_frame

TOKEN = "test-twilio-auth-token"
KEY = "test-phone-key"
LINE_TIMEOUT_S = 2
BRIEF = "You are a phone assistant. Answer in two or three full sentences."


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    env = {
        "PARLEY_TWILIO_AUTH_TOKEN": TOKEN,
        "PARLEY_API_KEYS": KEY,
        "PARLEY_PHONE_LINE_TIMEOUT_S": str(LINE_TIMEOUT_S),
    }
    with running_server("twilio", env=env) as running:
        yield running


def _media_url(server: RunningServer) -> tuple[str, str]:
    """The address the client connects to, and the one Twilio signs (the TwiML's wss:// address)."""
    return f"ws://127.0.0.1:{server.port}/twilio/media", f"wss://127.0.0.1:{server.port}/twilio/media"


def _call(server: RunningServer, **parameters: str) -> TwilioCall:
    url, signed = _media_url(server)
    return TwilioCall(url, signed, TOKEN, {"api_key": KEY, **parameters})


async def _until(condition: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
    return value


def _log_lines(server: RunningServer, call_sid: str, what: str) -> list[str]:
    prefix = f"call {call_sid}: {what}"
    return [line.split(prefix, 1)[1].strip() for line in server.log().splitlines() if prefix in line]


# Signatures and TwiML --------------------------------------------------------------------------------------


def test_signature_matches_twilios_published_examples() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}  # fmt: skip
    assert signature("12345", url, params.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")]
    assert signature("12345", url, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_the_public_url_setting_names_the_stream() -> None:
    behind_proxy = Settings(public_url="https://voice.example.com/parley/")
    assert public_base(behind_proxy, "http://10.0.0.5:8000/twilio/voice", websocket=True) == (
        "wss://voice.example.com/parley"
    )
    assert public_base(Settings(), "http://voice.example.com:8443/twilio/voice", websocket=True) == (
        "wss://voice.example.com:8443"
    )


def test_voice_webhook_answers_twiml_only_to_signed_requests(server: RunningServer) -> None:
    url = f"http://127.0.0.1:{server.port}/twilio/voice?voice=ash&knowledge=&api-key={KEY}&other=dropped"
    form = {"CallSid": "CA42", "From": "+15551230000", "To": "+15559990000"}
    signed = {"X-Twilio-Signature": signature(TOKEN, url, form.items())}
    answer = httpx.post(url, data=form, headers=signed)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    stream = ElementTree.fromstring(answer.text).find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url") == f"wss://127.0.0.1:{server.port}/twilio/media"
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert parameters == {"voice": "ash", "knowledge": "", "caller": "+15551230000", "api_key": KEY}

    forged = {"X-Twilio-Signature": signature("another-token", url, form.items())}
    assert httpx.post(url, data=form, headers=forged).status_code == 403
    assert httpx.post(url, data=form).status_code == 403
    tampered = {**form, "From": "+15550000000"}
    assert httpx.post(url, data=tampered, headers=signed).status_code == 403
    keyless = url.replace(f"&api-key={KEY}", "")
    unkeyed = {"X-Twilio-Signature": signature(TOKEN, keyless, form.items())}
    assert httpx.post(keyless, data=form, headers=unkeyed).status_code == 401


async def test_a_stream_without_a_valid_signature_is_refused(server: RunningServer) -> None:
    url, signed = _media_url(server)
    for headers in ({}, {"X-Twilio-Signature": signature("another-token", signed)}):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, additional_headers=headers)
        assert refused.value.response.status_code == 403


# A call ----------------------------------------------------------------------------------------------------


async def test_a_call_is_heard_answered_and_cut_short_by_the_caller(server: RunningServer) -> None:
    question = utterance("commands_en", "en-what_s_the_date")
    # A studio recording: its speech starts where its sound does, so the barge-in has a well-defined moment
    # (the command recordings open with clicks and breaths that no voice detector should take for speech).
    interruption = utterance("ljspeech_en", "LJ001-0008")
    asked, interrupting = mulaw_8k(question.samples(24_000)), mulaw_8k(interruption.samples(24_000))
    quiet = _call(server)
    quiet.call_sid, quiet.stream_sid = "CA00000000000000000000000000000002", "MZ00000000000000000000000000000002"
    async with _call(server, instructions=BRIEF, max_output_tokens="80") as call, quiet:
        await asyncio.sleep(0.5)
        call.say(asked)
        await _until(lambda: call.said, 5)
        speech_end_at = call.said[0][0] + _speech_end(asked)
        await _until(lambda: call.media_in, 60)
        voice_to_voice_ms = (call.media_in[0][0] - speech_end_at) * 1000
        await asyncio.sleep(0.3)  # the caller hears the start of the answer, then talks over it
        call.say(interrupting)
        await _until(lambda: len(call.said) == 2, 10)
        cleared_at, _ = (await _until(lambda: call.clears, 10))[0]
        barge_in_ms = (cleared_at - call.said[1][1]) * 1000
        await _until(lambda: any(at > cleared_at for at, _ in call.media_in), 60)  # the second answer
        await asyncio.sleep(1.0)
        await call.hang_up()
        await asyncio.wait_for(call.closed.wait(), 10)
    print(f"twilio: voice-to-voice {voice_to_voice_ms:.0f} ms, clear {barge_in_ms:.0f} ms after the barge-in")

    heard = [ast.literal_eval(said) for said in _log_lines(server, call.call_sid, "caller said")]
    assert len(heard) >= 2, server.log()[-3000:]
    assert wer(question.text, heard[0]) <= 0.5, heard
    assert wer(interruption.text, heard[-1]) <= 0.5, heard

    answer = b"".join(audio for at, audio in call.media_in if at < cleared_at)
    assert len(answer) >= 8 * 500, "the answer's audio before the barge-in"
    assert np.sqrt(np.mean(codec.decode(answer, "g711_ulaw").astype(np.float32) ** 2)) > 300, "a voiced answer"
    assert all(len(audio) <= 160 for _, audio in call.media_in), "20 ms frames"
    assert all(m.get("streamSid") == call.stream_sid for _, m in call.received)
    assert barge_in_ms < 300, f"clear {barge_in_ms:.0f} ms after the caller began to speak"

    # The answer was cut to what Twilio had played when Parley cleared it: the last mark echoed by then (or the
    # one before, when the last was still on its way to the server as the clear left it).
    echoed_before = [mark.played_bytes // 8 for mark in call.marks if mark.at < cleared_at]
    truncated = _log_lines(server, call.call_sid, "answer")
    cuts = [int(m.group(1)) for line in truncated if (m := re.search(r"truncated at (\d+) ms", line))]
    assert len(cuts) == 1, truncated
    assert cuts[0] in echoed_before[-2:], (cuts, echoed_before)
    assert 0 < cuts[0] < len(answer) // 8, "part of the answer, not all of it"

    assert not quiet.media_in, "audio of one call in another"
    assert not _log_lines(server, quiet.call_sid, "caller said")
    assert _log_lines(server, call.call_sid, "ended (the caller hung up (stop))")


def _speech_end(audio: bytes) -> float:
    """Where the last voiced 20 ms frame of a recording ends, in seconds."""
    return (len(audio) // 160 - onset_frame(audio[::-1])) * 0.02


# Bad streams ------------------------------------------------------------------------------------------------


def _start(stream_sid: str = "MZbad", **parameters: str) -> dict[str, Any]:
    start = {"streamSid": stream_sid, "callSid": "CAbad", "customParameters": {"api_key": KEY, **parameters},
             "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}  # fmt: skip
    return {"event": "start", "sequenceNumber": "1", "start": start, "streamSid": stream_sid}


def _media(sequence: int, stream_sid: str = "MZbad", payload: str = "/////w==") -> dict[str, Any]:
    media = {"track": "inbound", "payload": payload}
    return {"event": "media", "sequenceNumber": str(sequence), "streamSid": stream_sid, "media": media}


BAD_STREAMS: dict[str, tuple[list[Any], str]] = {
    "media before start": ([_media(1)], "'media' before 'start'"),
    "not JSON": (["{not json"], "not JSON"),
    "no event": ([{"sequenceNumber": "1"}], "without an 'event' name"),
    "unknown event": ([_start(), {"event": "transfer", "sequenceNumber": "2"}], "unknown event 'transfer'"),
    "another stream's media": ([_start(), _media(2, "MZother")], "for another stream"),
    "out of order": ([_start(), _media(3), _media(2)], "out of order"),
    "bad base64": ([_start(), _media(2, payload="%%%")], "not base64"),
    "second start": ([_start(), {**_start(), "sequenceNumber": "2"}], "a second 'start'"),
    "no key": ([{**_start(), "start": {**_start()["start"], "customParameters": {}}}], "no valid API key"),
    "unknown knowledge base": ([_start(knowledge="nonesuch")], "nonesuch"),
    "a-law": ([{**_start(), "start": {**_start()["start"], "mediaFormat": {"encoding": "audio/x-alaw"}}}], "x-alaw"),
    "binary frame": ([_start(), b"\x00\x01"], "binary frame"),
    "never stops": ([_start(), _media(2)], f"nothing received for {LINE_TIMEOUT_S} s"),
}


@pytest.mark.parametrize("case", list(BAD_STREAMS))
async def test_a_bad_stream_ends_its_call_cleanly(server: RunningServer, case: str) -> None:
    messages, logged = BAD_STREAMS[case]
    url, signed = _media_url(server)
    async with websockets.connect(url, additional_headers={"X-Twilio-Signature": signature(TOKEN, signed)}) as ws:
        for message in messages:
            await ws.send(message if isinstance(message, str | bytes) else json.dumps(message))
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), LINE_TIMEOUT_S + 5)
    await _until(lambda: logged in server.log(), 5)
    assert "Traceback" not in server.log()


async def test_a_stream_that_drops_without_stop_ends_its_call(server: RunningServer) -> None:
    url, signed = _media_url(server)
    async with websockets.connect(url, additional_headers={"X-Twilio-Signature": signature(TOKEN, signed)}) as ws:
        await ws.send(json.dumps({**_start("MZdrop"), "start": {**_start("MZdrop")["start"], "callSid": "CAdrop"}}))
        await ws.send(json.dumps(_media(2, "MZdrop")))
    await _until(lambda: _log_lines(server, "CAdrop", "ended"), 5)
    assert "closed without a stop message" in server.log()
