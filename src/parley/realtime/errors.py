"""Protocol errors: raised by handlers, turned into ``error`` events that leave the session running."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails

ErrorType = Literal["invalid_request_error", "server_error"]


class RealtimeError(Exception):
    """A client-visible error. ``param`` is the dotted path of the offending field, when there is one."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: ErrorType = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.type = type

    def payload(self, client_event_id: str | None) -> dict[str, Any]:
        return {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "event_id": client_event_id,
        }


def dotted(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """Render a pydantic location as OpenAI does: ``session.tools[2].name``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def from_validation_error(exc: ValidationError, prefix: str = "", data: Any = None) -> RealtimeError:
    """Map a pydantic error to OpenAI's codes: missing, wrong type, or bad value.

    ``data`` is the input that failed. Pydantic puts a union member's tag into the location
    (``max_output_tokens.constrained-int``); walking the input tells those tags from real keys.
    """
    located = [(error, _input_path(error, data)) for error in exc.errors(include_url=False)]
    first, loc = located[0]
    # Within a union the first member's complaint can be the least useful: prefer a sibling that got
    # further into the same value ({"type": "function"} lacks a name, rather than "should be 'auto'"),
    # or one that took the value's type (a string that is not "inf", rather than "not an integer").
    for error, path in located[1:]:
        deeper = len(path) > len(loc) and path[: len(loc)] == loc
        if deeper or (path == loc and _is_type_error(first["type"]) and not _is_type_error(error["type"])):
            first, loc = error, path
    param = dotted(loc, prefix)
    kind = first["type"]
    if kind == "missing":
        return RealtimeError(f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param)
    if _is_type_error(kind):
        return RealtimeError(f"Invalid type for '{param}': {first['msg']}.", code="invalid_type", param=param)
    return RealtimeError(f"Invalid value for '{param}': {first['msg']}.", code="invalid_value", param=param)


def _is_type_error(kind: str) -> bool:
    return kind.endswith("_type") or kind.endswith("_parsing")


def _input_path(error: ErrorDetails, data: Any) -> tuple[int | str, ...]:
    """The error's location with union tags dropped: only steps that exist in ``data`` (or the missing key)."""
    loc = tuple(error["loc"])
    if data is None:
        return loc
    path: list[int | str] = []
    node = data
    for index, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif not (error["type"] == "missing" and index == len(loc) - 1):
            continue  # a union member's tag, not a place in the input
        path.append(part)
    return tuple(path)
