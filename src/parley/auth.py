"""API keys: read from every place OpenAI clients put them, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

KEY_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."


def presented_key(headers: Mapping[str, str], query: Mapping[str, str], subprotocols: Iterable[str]) -> str | None:
    """The key a client sent: Bearer header, ``api-key`` header (Azure), browser subprotocol, or query."""
    authorization = headers.get("authorization") or query.get("Authorization") or ""
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    if headers.get("api-key"):
        return headers["api-key"]
    for protocol in subprotocols:
        if protocol.startswith(KEY_SUBPROTOCOL_PREFIX):
            return protocol[len(KEY_SUBPROTOCOL_PREFIX) :]
    return query.get("api-key")


def key_accepted(key: str | None, allowed: Iterable[str]) -> bool:
    allowed = list(allowed)
    if not allowed:
        return True
    if key is None:
        return False
    return any(hmac.compare_digest(key.encode(), candidate.encode()) for candidate in allowed)
