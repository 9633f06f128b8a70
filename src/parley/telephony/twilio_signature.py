"""Twilio's request signature (``X-Twilio-Signature``): HMAC-SHA1, keyed with the account's auth token, of the
full URL Twilio requested followed by every POST parameter's name and value, sorted by name, in base64.

Written here rather than taken from the ``twilio`` SDK: it is twenty lines, and the SDK would bring an HTTP
client stack Parley does not otherwise use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

_SECURE = {"http": "https", "ws": "wss", "https": "https", "wss": "wss"}
_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """The signature Twilio sends for a request to ``url`` with POST ``params`` (none for a WebSocket)."""
    # Sorted by name then value, a repeated name and value counted once (as Twilio's own validators do).
    payload = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_urls(url: str) -> list[str]:
    """The URLs Twilio may have signed for a request that reached Parley at ``url``: behind a TLS proxy Parley
    sees ``http``/``ws`` where Twilio requested ``https``/``wss``; Twilio signs with or without a default port."""
    parts = urlsplit(url)
    candidates = []
    for scheme in dict.fromkeys([parts.scheme, _SECURE.get(parts.scheme, parts.scheme)]):
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netlocs = [host + (f":{parts.port}" if parts.port else "")]
        if parts.port is None:
            netlocs.append(f"{host}:{_DEFAULT_PORTS.get(scheme, 443)}")
        elif parts.port == _DEFAULT_PORTS.get(scheme):
            netlocs.append(host)
        candidates += [urlunsplit((scheme, netloc, parts.path, parts.query, "")) for netloc in netlocs]
    return candidates


def valid(auth_token: str, urls: Iterable[str], params: list[tuple[str, str]], presented: str | None) -> bool:
    """Whether ``presented`` is Twilio's signature of one of ``urls`` with ``params``, compared in constant time."""
    if not presented:
        return False
    return any(hmac.compare_digest(signature(auth_token, url, params), presented) for url in urls)
