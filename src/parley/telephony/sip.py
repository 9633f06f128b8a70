"""A SIP line (RFC 3261 over UDP): Parley answers INVITEs from a trunk or PBX, and each call is a ``Call``.

It is a user agent for the subset a line answering calls needs: INVITE (answered with SDP choosing PCMU or PCMA
and telephone-events), ACK, BYE, CANCEL and OPTIONS; the 200 OK to an INVITE is sent again until its ACK comes
(RFC 3261 §13.3.1.4). It does not register, authenticate or place calls. Per-call settings come from
``X-Parley-<Name>`` headers of the INVITE (``X-Parley-Voice: ash``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Coroutine
from typing import Any

from ..config import Settings
from ..knowledge import KnowledgeLibrary
from ..services import Services
from . import sip_message as sip
from .call import Call, CallError, CallSettings
from .rtp import RtpStream

log = logging.getLogger(__name__)

# 200 OK retransmissions until the ACK: T1 doubling up to T2, for 64*T1 (RFC 3261 §13.3.1.4, §17.1.1.1).
T1_S, T2_S = 0.5, 4.0
PARAMETER_HEADER = "x-parley-"


class SipLine(asyncio.DatagramProtocol):
    def __init__(self, settings: Settings, services: Services, library: KnowledgeLibrary) -> None:
        self._settings = settings
        self._services = services
        self._library = library
        self._address = settings.sip_address or settings.host
        self._transport: asyncio.DatagramTransport | None = None
        self.calls: dict[str, SipCall] = {}
        self._handling: set[asyncio.Task[None]] = set()  # answers and hang-ups under way, kept until done

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self._settings.host, self._settings.sip_port))
        log.info("SIP line listening on udp %s:%s", self._settings.host, self._settings.sip_port)

    async def close(self) -> None:
        for call in list(self.calls.values()):
            await call.end("the server stopped", send_bye=True)
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def send(self, message: sip.SipMessage, addr: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(message.render(), addr)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip():
            return  # a keep-alive (RFC 5626 CRLF)
        try:
            message = sip.parse(data)
        except sip.SipParseError as exc:
            log.warning("SIP from %s:%s: dropping a message that cannot be read (%s)", *addr, exc)
            return
        method = message.method
        if method is None:
            return  # responses: Parley sends no requests but BYE, whose answer changes nothing
        call = self.calls.get(message.call_id)
        if method == "INVITE":
            if call is not None:
                call.invite_again(message, addr)
            else:
                self.spawn(self._answer(message, addr))
        elif method == "ACK":
            if call is not None:
                call.acknowledged()
        elif method in ("BYE", "CANCEL"):
            self.send(sip.response(message, 200 if call else 481), addr)
            if call is not None:
                self.spawn(call.end(f"the caller hung up ({method})"))
        elif method == "OPTIONS":
            self.send(sip.response(message, 200, extra=[("allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")]), addr)
        else:
            self.send(sip.response(message, 501), addr)

    async def _answer(self, invite: sip.SipMessage, addr: tuple[str, int]) -> None:
        name = f"SIP call {invite.call_id[:40]}"
        services = self._services
        if not services.ready.is_set() or services.llm is None or services.voice is None:
            self.send(sip.response(invite, 503), addr)
            return
        try:
            offer = sip.parse_sdp(invite.body)
        except sip.SipParseError as exc:
            log.warning("%s: refused: %s", name, exc)
            self.send(sip.response(invite, 400), addr)
            return
        payload_type = sip.common_codec(offer)
        if payload_type is None:
            log.warning("%s: refused: no common codec (offered %s; Parley speaks PCMU and PCMA)", name,
                        offer.payload_types)  # fmt: skip
            self.send(sip.response(invite, 488), addr)
            return
        parameters = {k[len(PARAMETER_HEADER) :]: v for k, v in invite.headers if k.startswith(PARAMETER_HEADER)}
        parameters = {key.replace("-", "_"): value for key, value in parameters.items()}
        try:
            call_settings = CallSettings.resolve(self._settings, self._library, parameters)
        except CallError as exc:
            log.warning("%s: refused: %s", name, exc)
            self.send(sip.response(invite, 488), addr)
            return
        call = SipCall(self, invite, addr, name)
        self.calls[invite.call_id] = call
        try:
            await call.start(offer, payload_type, call_settings, self._settings, self._library, self._address)
        except OSError as exc:
            log.warning("%s: could not open its RTP socket: %s", name, exc)
            self.calls.pop(invite.call_id, None)
            self.send(sip.response(invite, 503), addr)


class SipCall:
    """One answered INVITE: its dialog, its RTP and its ``Call``."""

    def __init__(self, line: SipLine, invite: sip.SipMessage, addr: tuple[str, int], name: str) -> None:
        self._line = line
        self._invite = invite
        self._addr = addr
        self.name = name
        self._tag = secrets.token_hex(6)
        self._ok: sip.SipMessage | None = None
        self._acked = asyncio.Event()
        self._rtp: RtpStream | None = None
        self._call: Call | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ended = False

    async def start(
        self,
        offer: sip.AudioOffer,
        payload_type: int,
        call_settings: CallSettings,
        settings: Settings,
        library: KnowledgeLibrary,
        address: str,
    ) -> None:
        services = self._line._services
        assert services.llm is not None and services.voice is not None
        self._line.send(sip.response(self._invite, 100), self._addr)
        loop = asyncio.get_running_loop()
        rtp = RtpStream(self.name, payload_type, offer.telephone_event, (offer.address, offer.port),
                        self._dtmf, self._played, self._problem)  # fmt: skip
        await loop.create_datagram_endpoint(lambda: rtp, local_addr=(settings.host, 0))
        self._rtp = rtp
        audio_format = sip.G711[payload_type][1]
        llm, voice = services.llm, services.voice
        self._call = Call(self._invite.call_id, audio_format, call_settings, settings, llm, voice, library, rtp)
        body = sip.sdp_answer(address, rtp.local_port, payload_type, offer.telephone_event, random.randrange(2**31))
        contact = f"<sip:parley@{address}:{settings.sip_port}>"
        extra = [("contact", contact), ("content-type", "application/sdp")]
        self._ok = sip.response(self._invite, 200, to_tag=self._tag, extra=extra, body=body)
        self._line.send(self._ok, self._addr)
        log.info("%s: answered from %s (%s, RTP %s:%s, DTMF %s)", self.name, self._invite.header("from"),
                 sip.G711[payload_type][0], offer.address, offer.port, offer.telephone_event)  # fmt: skip
        await self._call.start()
        rtp.start()
        timeout = settings.phone_line_timeout_s
        self._tasks = [
            loop.create_task(self._listen(), name=f"{self.name}-listen"),
            loop.create_task(self._retransmit_ok(), name=f"{self.name}-ok"),
            loop.create_task(self._watch(timeout), name=f"{self.name}-watch"),
        ]

    def invite_again(self, invite: sip.SipMessage, addr: tuple[str, int]) -> None:
        """A retransmitted INVITE gets the same answer; a re-INVITE (new CSeq) keeps the call as it is."""
        if invite.cseq == self._invite.cseq and self._ok is not None:
            self._line.send(self._ok, addr)
        else:
            self._line.send(sip.response(invite, 488), addr)

    def acknowledged(self) -> None:
        self._acked.set()

    async def _retransmit_ok(self) -> None:
        interval, waited = T1_S, 0.0
        while waited < 64 * T1_S:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked.wait(), interval)
                return
            waited += interval
            interval = min(interval * 2, T2_S)
            if self._ok is not None:
                self._line.send(self._ok, self._addr)
        await self.end("no ACK for the 200 OK", send_bye=True)

    async def _listen(self) -> None:
        assert self._rtp is not None and self._call is not None
        while True:
            await self._call.hear(await self._rtp.incoming.get())

    async def _watch(self, timeout_s: float) -> None:
        """End the call when its RTP stops (a BYE that never came) or its session ends by itself."""
        assert self._rtp is not None and self._call is not None
        while not self._call.ended:
            if time.monotonic() - self._rtp.last_received > timeout_s:
                await self.end(f"no RTP for {timeout_s:g} s", send_bye=True)
                return
            await asyncio.sleep(0.25)
        await self.end("the session ended", send_bye=True)

    def _dtmf(self, digit: str) -> None:
        if self._call is not None:
            self._call.dtmf(digit)

    def _played(self, mark: str) -> None:
        if self._call is not None:
            self._call.played(mark)

    def _problem(self, problem: str) -> None:
        log.warning("%s: %s; ending the call", self.name, problem)
        self._line.spawn(self.end(problem, send_bye=True))

    async def end(self, reason: str, *, send_bye: bool = False) -> None:
        if self._ended:
            return
        self._ended = True
        self._line.calls.pop(self._invite.call_id, None)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if send_bye:
            self._line.send(self._bye(), self._addr)
        if self._call is not None:
            await self._call.close(reason)
        if self._rtp is not None:
            await self._rtp.close()

    def _bye(self) -> sip.SipMessage:
        """A BYE within the dialog, from Parley's side: From and To swap, our tag on From."""
        invite = self._invite
        contact = invite.header("contact") or ""
        target = contact[contact.find("<") + 1 : contact.find(">")] if "<" in contact else contact or "sip:caller"
        host, port = self._line._address, self._line._settings.sip_port
        headers = [
            ("via", f"SIP/2.0/UDP {host}:{port};branch=z9hG4bK{secrets.token_hex(8)}"),
            ("max-forwards", "70"),
            ("from", f"{invite.header('to')};tag={self._tag}"),
            ("to", invite.header("from") or ""),
            ("call-id", invite.call_id),
            ("cseq", f"{random.randrange(1, 2**31)} BYE"),
        ]
        return sip.SipMessage(f"BYE {target} SIP/2.0", headers)
