"""SIP messages (RFC 3261) and SDP offers/answers (RFC 4566, 3264): the subset a line answering calls needs.

Parsing is strict about what it uses (the start line, Via, From, To, Call-ID, CSeq, Content-Length, the SDP's
audio stream) and ignores everything else; a message it cannot read raises ``SipParseError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# RFC 3261 §7.3.3: compact header names.
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
            "c": "content-type", "k": "supported", "s": "subject"}  # fmt: skip
_REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 400: "Bad Request", 403: "Forbidden",
            481: "Call/Transaction Does Not Exist", 486: "Busy Here", 487: "Request Terminated",
            488: "Not Acceptable Here", 501: "Not Implemented", 503: "Service Unavailable"}  # fmt: skip
# Static RTP payload types of the two G.711 laws (RFC 3551), and the audio format each is in a session.
G711 = {0: ("PCMU", "g711_ulaw"), 8: ("PCMA", "g711_alaw")}


class SipParseError(ValueError):
    pass


@dataclass
class SipMessage:
    start: str  # "INVITE sip:parley@host SIP/2.0" or "SIP/2.0 200 OK"
    headers: list[tuple[str, str]] = field(default_factory=list)  # (lowercase full name, value), in order
    body: str = ""

    @property
    def method(self) -> str | None:
        return None if self.start.startswith("SIP/") else self.start.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    @property
    def call_id(self) -> str:
        return self.header("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = (self.header("cseq") or "").partition(" ")
        return int(number), method.strip()

    def render(self) -> bytes:
        lines = [self.start, *(f"{_title(k)}: {v}" for k, v in self.headers if k != "content-length")]
        body = self.body.encode()
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse(data: bytes) -> SipMessage:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("not UTF-8") from None
    head, separator, body = text.partition("\r\n\r\n")
    if not separator:
        head, separator, body = text.partition("\n\n")
    lines = head.replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    if not re.fullmatch(r"[A-Z]+ \S+ SIP/2\.0|SIP/2\.0 \d{3} .*", start):
        raise SipParseError(f"not a SIP start line: {start[:60]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # a folded continuation
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"a header line without a colon: {line[:60]!r}")
        key = name.strip().lower()
        headers.append((_COMPACT.get(key, key), value.strip()))
    message = SipMessage(start, headers, body)
    for required in ("via", "from", "to", "call-id", "cseq"):
        if message.header(required) is None:
            raise SipParseError(f"no {required} header")
    try:
        message.cseq  # noqa: B018 - parse it once here so handlers can rely on it
    except ValueError:
        raise SipParseError(f"a bad CSeq: {message.header('cseq')!r}") from None
    return message


def response(
    request: SipMessage,
    status: int,
    *,
    to_tag: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: str = "",
) -> SipMessage:
    """A response to ``request`` (RFC 3261 §8.2.6): its Via, From, Call-ID and CSeq; To with our tag."""
    headers = [(k, v) for k, v in request.headers if k == "via"]
    to = request.header("to") or ""
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    headers += [("from", request.header("from") or ""), ("to", to), ("call-id", request.call_id),
                ("cseq", request.header("cseq") or ""), *extra]  # fmt: skip
    return SipMessage(f"SIP/2.0 {status} {_REASONS.get(status, 'Unknown')}", headers, body)


def _title(name: str) -> str:
    special = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}
    return special.get(name, "-".join(part.capitalize() for part in name.split("-")))


@dataclass(frozen=True)
class AudioOffer:
    address: str
    port: int
    payload_types: list[int]  # in the caller's order of preference
    telephone_event: int | None  # RFC 4733 payload type at 8 kHz, if offered


def parse_sdp(body: str) -> AudioOffer:
    address, port, payloads, rtpmap = None, None, [], {}
    for line in body.replace("\r\n", "\n").split("\n"):
        kind, _, value = line.strip().partition("=")
        if kind == "c" and value.startswith("IN IP4 "):
            address = value.split()[2]
        elif kind == "m" and value.startswith("audio ") and port is None:
            parts = value.split()
            if len(parts) < 4 or not parts[1].isdigit():
                raise SipParseError(f"a bad media line: {value[:60]!r}")
            port, payloads = int(parts[1]), [int(p) for p in parts[3:] if p.isdigit()]
        elif kind == "a" and value.startswith("rtpmap:"):
            number, _, codec = value[7:].partition(" ")
            if number.isdigit():
                rtpmap[int(number)] = codec.strip().lower()
    if address is None or port is None:
        raise SipParseError("an SDP offer without an IPv4 address and an audio stream")
    event = next((pt for pt in payloads if rtpmap.get(pt) == "telephone-event/8000"), None)
    return AudioOffer(address, port, payloads, event)


def common_codec(offer: AudioOffer) -> int | None:
    """The first G.711 payload type the caller offers (its order of preference), or None."""
    return next((pt for pt in offer.payload_types if pt in G711), None)


def sdp_answer(address: str, port: int, payload_type: int, telephone_event: int | None, session_id: int) -> str:
    formats = f"{payload_type}" + (f" {telephone_event}" if telephone_event is not None else "")
    lines = [
        "v=0", f"o=parley {session_id} {session_id} IN IP4 {address}", "s=Parley", f"c=IN IP4 {address}", "t=0 0",
        f"m=audio {port} RTP/AVP {formats}", f"a=rtpmap:{payload_type} {G711[payload_type][0]}/8000",
    ]  # fmt: skip
    if telephone_event is not None:
        lines += [f"a=rtpmap:{telephone_event} telephone-event/8000", f"a=fmtp:{telephone_event} 0-15"]
    lines += ["a=ptime:20", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"
