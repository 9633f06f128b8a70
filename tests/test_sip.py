"""The SIP line: a real SIP caller (Net::SIP, Debian's libnet-sip-perl) calls a real server (fast profile) on
loopback, speaks a real recording over RTP, presses a key and hangs up; and hand-made bad calls end cleanly."""

from __future__ import annotations

import ast
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soxr

from parley.bench.wer import wer
from parley.voice import audio as codec
from tests.support.server import RunningServer, running_server
from tests.support.speech import utterance

# The caller: Net::SIP, from Debian's libnet-sip-perl (scripts/install.sh --dev installs it).
PEER = Path(__file__).parent / "support" / "sip_peer.pl"
LINE_TIMEOUT_S = 3


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sip_server() -> Iterator[tuple[RunningServer, int]]:
    port = _free_udp_port()
    env = {"PARLEY_SIP_PORT": str(port), "PARLEY_PHONE_LINE_TIMEOUT_S": str(LINE_TIMEOUT_S)}
    with running_server("sip", env=env) as running:
        yield running, port


def _new_lines(server: RunningServer, since: int, marker: str) -> list[str]:
    return [line.split(marker, 1)[1].strip() for line in server.log()[since:].splitlines() if marker in line]


@pytest.mark.parametrize("law", ["PCMU", "PCMA"])
def test_a_sip_call_is_heard_answered_and_hears_a_key(sip_server: tuple[RunningServer, int], law: str,
                                                      tmp_path: Path) -> None:  # fmt: skip
    server, sip_port = sip_server
    fmt = "g711_ulaw" if law == "PCMU" else "g711_alaw"
    question = utterance("commands_en", "en-what_s_the_date")
    samples = soxr.resample(question.samples(24_000), 24_000, 8_000).astype(np.int16)
    quiet = np.zeros(8_000, dtype=np.int16)
    said = tmp_path / "said.raw"
    said.write_bytes(codec.encode(np.concatenate([quiet // 2, samples, quiet, quiet, quiet]), fmt))
    heard = tmp_path / "heard.raw"
    since = len(server.log())
    started = time.monotonic()
    peer = subprocess.run(
        ["perl", str(PEER), "--leg", f"127.0.0.1:{_free_udp_port()}", "--to", f"sip:parley@127.0.0.1:{sip_port}",
         "--send", str(said), "--recv", str(heard), "--codec", law, "--dtmf", "5", "--hold", "5",
         "--header", "X-Parley-Max-Output-Tokens: 40",
         "--header", "X-Parley-Instructions: You answer phone calls. Answer in one short sentence."],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    print(f"sip {law}: call took {time.monotonic() - started:.1f} s")
    assert peer.returncode == 0, peer.stdout + peer.stderr
    assert peer.stdout.split() == ["answered", "sent", "pressed", "5", "hung", "up"], peer.stdout

    answered = _new_lines(server, since, "answered from")
    assert len(answered) == 1 and f"({law}," in answered[0], answered
    caller_said = [ast.literal_eval(line) for line in _new_lines(server, since, "caller said")]
    assert caller_said and wer(question.text, caller_said[0]) <= 0.5, caller_said
    assert _new_lines(server, since, "DTMF 5"), "the key press reached the call"
    answers = _new_lines(server, since, ": answer ")
    assert len(answers) >= 2, f"an answer to the question and one to the key: {answers}"
    assert _new_lines(server, since, "ended (the caller hung up (BYE))")

    received = codec.decode(heard.read_bytes(), fmt).astype(np.float32)
    assert len(received) > 8_000, "RTP from Parley"
    frames = received[: len(received) // 160 * 160].reshape(-1, 160)
    voiced = np.sqrt((frames**2).mean(axis=1)) > 300
    assert voiced.sum() * 20 >= 500, "at least half a second of spoken answer"


# Hand-made bad calls ---------------------------------------------------------------------------------------


def _invite(sip_port: int, local_port: int, rtp_port: int, payload_types: str, call_id: str) -> bytes:
    sdp = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {rtp_port} RTP/AVP {payload_types}\r\n")  # fmt: skip
    return (
        f"INVITE sip:parley@127.0.0.1:{sip_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{call_id}\r\n"
        f"From: <sip:test@127.0.0.1:{local_port}>;tag=abc\r\nTo: <sip:parley@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:test@127.0.0.1:{local_port}>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def _receive(sock: socket.socket, timeout_s: float = 5) -> list[str]:
    sock.settimeout(timeout_s)
    messages = []
    try:
        while True:
            messages.append(sock.recv(65536).decode())
            sock.settimeout(0.3)
    except TimeoutError:
        return messages


def test_an_invite_without_a_common_codec_is_refused(sip_server: tuple[RunningServer, int]) -> None:
    server, sip_port = sip_server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        sock.sendto(b"NOT SIP AT ALL\r\n\r\n", ("127.0.0.1", sip_port))
        sock.sendto(_invite(sip_port, local, 40000, "9 18", "nocodec"), ("127.0.0.1", sip_port))
        replies = _receive(sock)
    assert any(reply.startswith("SIP/2.0 488") for reply in replies), replies
    assert "no common codec" in server.log()
    assert "cannot be read" in server.log()


def test_rtp_with_a_jumping_sequence_ends_the_call(sip_server: tuple[RunningServer, int]) -> None:
    server, sip_port = sip_server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:  # fmt: skip
        sock.bind(("127.0.0.1", 0))
        rtp.bind(("127.0.0.1", 0))
        local, rtp_port = sock.getsockname()[1], rtp.getsockname()[1]
        sock.sendto(_invite(sip_port, local, rtp_port, "0 8", "jumping"), ("127.0.0.1", sip_port))
        replies = _receive(sock)
        ok = next(reply for reply in replies if reply.startswith("SIP/2.0 200"))
        assert "m=audio" in ok and "RTP/AVP 0" in ok, ok
        parley_rtp = int(ok.split("m=audio ", 1)[1].split()[0])
        ack = _invite(sip_port, local, rtp_port, "0", "jumping").decode().replace("INVITE sip", "ACK sip", 1)
        sock.sendto(ack.replace("CSeq: 1 INVITE", "CSeq: 1 ACK").encode(), ("127.0.0.1", sip_port))
        for sequence in [*range(1, 20), 9000]:
            header = struct.pack("!BBHII", 0x80, 0, sequence, sequence * 160, 0x1234)
            rtp.sendto(header + b"\xff" * 160, ("127.0.0.1", parley_rtp))
            time.sleep(0.02)
        bye = [reply for reply in _receive(sock) if reply.startswith("BYE ")]
    assert bye, "Parley hangs up"
    assert "RTP sequence jumped by" in server.log()
    assert "ended (RTP sequence jumped" in server.log()
