"""Where a client connects: one ``--url`` in any of the shapes people paste, turned into an SDK client."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from openai import AsyncOpenAI

DEFAULT_URL = "http://127.0.0.1:8000"
# The SDK insists on a key; a Parley server without keys ignores whatever is sent.
NO_KEY = "parley"


def realtime_client(url: str, api_key: str | None) -> AsyncOpenAI:
    """An SDK client for ``http(s)://host[:port][/v1]``, or the WebSocket URL ``ws(s)://host/v1/realtime``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in {"http", "https", "ws", "wss"} or not parts.netloc:
        raise ValueError(f"not a server URL: {url!r} (expected e.g. {DEFAULT_URL})")
    secure = parts.scheme in {"https", "wss"}
    path = parts.path.rstrip("/").removesuffix("/realtime") or "/v1"
    return AsyncOpenAI(
        api_key=api_key or NO_KEY,
        base_url=urlunsplit(("https" if secure else "http", parts.netloc, path, "", "")),
        websocket_base_url=urlunsplit(("wss" if secure else "ws", parts.netloc, path, "", "")),
    )


def connection_problem(exc: BaseException) -> str | None:
    """A one-line reason for a failure to reach or keep the server, or None for other errors."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        hint = ": check --api-key" if status in {401, 403} else ""
        return f"the server refused the connection (HTTP {status}){hint}"
    if isinstance(exc, ConnectionClosed):
        return f"the server closed the connection ({exc})"
    if isinstance(exc, InvalidURI | OSError | TimeoutError):
        return f"could not reach the server ({exc or type(exc).__name__}): is it running, and is --url right?"
    return None
