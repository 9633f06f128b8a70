"""One SIP call's RTP (RFC 3550): G.711 in 20 ms packets both ways, and DTMF as RFC 4733 telephone-events.

Each call has a socket of its own, so a packet's port says which call it belongs to; packets from any other
address than the one the caller's SDP named are dropped. Parley is the far end's only source of timing: a
pacer sends a packet every 20 ms (silence when there is nothing to say), and a piece of audio counts as played
once its last packet has left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

FRAME_BYTES = 160  # 20 ms at 8 kHz, one byte a sample
FRAME_S = 0.02
SILENCE = {0: 0xFF, 8: 0xD5}  # G.711 zero in μ-law and A-law
# A sequence number this far ahead, or a timestamp this far from what the sequence says, is not packet loss.
MAX_SEQUENCE_JUMP = 500  # 10 s of packets
MAX_TIMESTAMP_SKEW = 8000 * 10  # 10 s of samples
MAX_QUEUED_PACKETS = 250  # 5 s of caller audio waiting for the listener: the call is not keeping up
DTMF_DIGITS = "0123456789*#ABCD"


class RtpProblem(Exception):
    """RTP that cannot belong to a working call: it ends."""


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket | None:
        """None for what is not an RTP version 2 packet (STUN, RTCP sent to the wrong port, noise)."""
        if len(data) < 12 or data[0] >> 6 != 2:
            return None
        first, second, sequence, timestamp, ssrc = struct.unpack("!BBHII", data[:12])
        offset = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # a header extension: its length in 32-bit words follows its profile
            if len(data) < offset + 4:
                return None
            offset += 4 + 4 * struct.unpack("!H", data[offset + 2 : offset + 4])[0]
        end = len(data) - (data[-1] if first & 0x20 else 0)
        if offset > end:
            return None
        return cls(second & 0x7F, sequence, timestamp, ssrc, data[offset:end], bool(second & 0x80))

    def render(self) -> bytes:
        second = (0x80 if self.marker else 0) | self.payload_type
        return struct.pack("!BBHII", 0x80, second, self.sequence, self.timestamp, self.ssrc) + self.payload


class RtpStream(asyncio.DatagramProtocol):
    """The call's audio out (a ``Line``) and in (``incoming``); DTMF digits and problems go to callbacks."""

    def __init__(
        self,
        name: str,
        payload_type: int,
        telephone_event: int | None,
        remote: tuple[str, int],
        on_dtmf: Callable[[str], None],
        on_played: Callable[[str], None],
        on_problem: Callable[[str], None],
    ) -> None:
        self._name = name
        self._payload_type = payload_type
        self._telephone_event = telephone_event
        self._remote = remote
        self._on_dtmf = on_dtmf
        self._on_played = on_played
        self._on_problem = on_problem
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.last_received = time.monotonic()
        self._transport: asyncio.DatagramTransport | None = None
        self._outgoing: deque[tuple[bytes, str | None]] = deque()
        self._ssrc_in: int | None = None
        self._last_sequence = 0
        self._last_audio: tuple[int, int] | None = None  # (sequence, timestamp) of the last audio packet
        self._dtmf_seen: int | None = None  # timestamp of the telephone-event already reported
        self._out = RtpPacket(payload_type, random.randrange(65536), random.randrange(2**32), random.randrange(2**32),
                              b"")  # fmt: skip
        self._pacer: asyncio.Task[None] | None = None
        self._warned: set[str] = set()

    @property
    def local_port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def start(self) -> None:
        self._pacer = asyncio.create_task(self._pace(), name=f"rtp-{self._name}")

    async def close(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
        if self._transport is not None:
            self._transport.close()

    # In ------------------------------------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if addr[0] != self._remote[0]:
            self._warn_once("source", f"dropping RTP from {addr[0]}, not the caller's {self._remote[0]}")
            return
        packet = RtpPacket.parse(data)
        if packet is None:
            self._warn_once("garbage", "dropping a datagram that is not RTP")
            return
        try:
            if not self._in_order(packet):
                return
        except RtpProblem as exc:
            self._on_problem(str(exc))
            return
        self.last_received = time.monotonic()
        if packet.payload_type == self._payload_type:
            if self.incoming.qsize() >= MAX_QUEUED_PACKETS:
                self._on_problem("the caller's audio is arriving faster than it can be listened to")
                return
            self.incoming.put_nowait(packet.payload)
        elif packet.payload_type == self._telephone_event:
            self._telephone_event_received(packet)
        else:
            self._warn_once(f"pt{packet.payload_type}", f"dropping RTP of payload type {packet.payload_type}")

    def _in_order(self, packet: RtpPacket) -> bool:
        """Whether to use the packet (late and repeated ones are dropped); RtpProblem for a jump no loss makes."""
        if packet.ssrc != self._ssrc_in:
            if self._ssrc_in is not None:
                log.info("%s: RTP source changed (SSRC %08x)", self._name, packet.ssrc)
            self._ssrc_in, self._last_sequence, self._last_audio = packet.ssrc, packet.sequence, None
        else:
            ahead = (packet.sequence - self._last_sequence) % 65536
            if ahead == 0 or ahead > 32768:
                return False
            if ahead > MAX_SEQUENCE_JUMP:
                raise RtpProblem(f"RTP sequence jumped by {ahead} packets")
            self._last_sequence = packet.sequence
        if packet.payload_type == self._payload_type:
            if self._last_audio is not None:
                sequences = (packet.sequence - self._last_audio[0]) % 65536
                samples = (packet.timestamp - self._last_audio[1]) % 2**32
                skew = min(abs(samples - sequences * FRAME_BYTES), 2**32 - abs(samples - sequences * FRAME_BYTES))
                if skew > MAX_TIMESTAMP_SKEW:
                    raise RtpProblem(f"RTP timestamp jumped by {samples} samples over {sequences} packets")
            self._last_audio = (packet.sequence, packet.timestamp)
        return True

    def _telephone_event_received(self, packet: RtpPacket) -> None:
        """RFC 4733: one event is several packets with one timestamp (the end sent three times): report it once."""
        if len(packet.payload) < 4 or packet.timestamp == self._dtmf_seen:
            return
        event = packet.payload[0]
        if event >= len(DTMF_DIGITS):
            return  # not a DTMF event (a tone, a flash)
        self._dtmf_seen = packet.timestamp
        self._on_dtmf(DTMF_DIGITS[event])

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("%s: %s", self._name, message)

    # Out -----------------------------------------------------------------------------------------------------

    async def play(self, audio: bytes, mark: str) -> None:
        frames = [audio[i : i + FRAME_BYTES] for i in range(0, len(audio), FRAME_BYTES)] or [b""]
        silence = bytes([SILENCE[self._payload_type]])
        for index, frame in enumerate(frames):
            self._outgoing.append((frame.ljust(FRAME_BYTES, silence), mark if index == len(frames) - 1 else None))

    async def clear(self) -> None:
        self._outgoing.clear()

    async def _pace(self) -> None:
        """A packet every 20 ms on an absolute schedule, so the far end's jitter buffer sees a steady stream."""
        silence = bytes([SILENCE[self._payload_type]]) * FRAME_BYTES
        started = time.monotonic()
        sent = 0
        while True:
            frame, mark = self._outgoing.popleft() if self._outgoing else (silence, None)
            packet = self._out
            self._out = RtpPacket(packet.payload_type, (packet.sequence + 1) % 65536,
                                  (packet.timestamp + FRAME_BYTES) % 2**32, packet.ssrc, b"")  # fmt: skip
            if self._transport is not None:
                self._transport.sendto(RtpPacket(**{**packet.__dict__, "payload": frame}).render(), self._remote)
            if mark is not None:
                self._on_played(mark)
            sent += 1
            delay = started + sent * FRAME_S - time.monotonic()
            if delay < -1.0:  # the loop stalled for a second: start the schedule afresh rather than burst
                started, sent, delay = time.monotonic(), 0, 0.0
            await asyncio.sleep(max(0.0, delay))
