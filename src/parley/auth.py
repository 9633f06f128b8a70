"""API keys: read from every place OpenAI clients put them, and told apart: environment keys (the operator's),
stored keys (a project's, with limits), or none on an open server."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .storage import KeyRecord, KeyStore

KEY_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."


@dataclass(frozen=True)
class Principal:
    """Who a request is from. ``key`` is the stored key it presented; None for an environment key or on a
    server with no keys, which act for the operator: no limits, every project visible."""

    key: KeyRecord | None = None

    @property
    def project(self) -> str | None:
        return self.key.project if self.key else None

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None


OPERATOR = Principal()


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


class KeyRefused(Exception):
    """A 401: the message says why (missing, unknown, revoked, expired)."""


async def identify(key: str | None, env_keys: list[str], keys: KeyStore) -> Principal:
    """The principal for ``key``, or ``KeyRefused``. The database is read in a thread, never on the loop."""
    if key and env_keys and key_accepted(key, env_keys):
        return OPERATOR
    if key:
        record = await asyncio.to_thread(keys.find, key)
        if record is not None:
            problem = record.problem(time.time())
            if problem:
                raise KeyRefused(problem)
            return Principal(record)
    if env_keys or await asyncio.to_thread(keys.any_usable):
        raise KeyRefused("Missing or invalid API key.")
    return OPERATOR
