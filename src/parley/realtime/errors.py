"""Protocol errors: raised by handlers, turned into ``error`` events that leave the session running."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

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


def from_validation_error(exc: ValidationError, prefix: str = "") -> RealtimeError:
    """Map the first pydantic error to OpenAI's codes: missing, wrong type, or bad value."""
    first = exc.errors(include_url=False)[0]
    param = dotted(tuple(first["loc"]), prefix)
    kind = first["type"]
    if kind == "missing":
        return RealtimeError(f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param)
    if kind.endswith("_type") or kind.endswith("_parsing") or kind in {"model_type", "dict_type", "list_type"}:
        return RealtimeError(f"Invalid type for '{param}': {first['msg']}.", code="invalid_type", param=param)
    return RealtimeError(f"Invalid value for '{param}': {first['msg']}.", code="invalid_value", param=param)
