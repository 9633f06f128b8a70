"""Conversation items: the internal form, how clients' items are checked, and how each dialect renders them."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..ids import new_id
from .dialect import Dialect
from .errors import RealtimeError

ContentType = Literal["input_text", "input_audio", "input_image", "output_text", "output_audio"]
ItemStatus = Literal["completed", "incomplete", "in_progress"]
Role = Literal["user", "assistant", "system"]

_ALLOWED_CONTENT: dict[str, set[str]] = {
    "user": {"input_text", "input_audio", "input_image"},
    "system": {"input_text"},
    "assistant": {"output_text"},
}


class ContentPart(BaseModel):
    type: ContentType
    text: str | None = None
    audio: bytes | None = None  # raw, in ``audio_format``; base64 only when a client retrieves it
    audio_format: str | None = None
    transcript: str | None = None
    image_url: str | None = None
    detail: str | None = None
    # Spoken output: (end of a word in ms from the audio's start, transcript length up to that word).
    word_ends: list[tuple[int, int]] = []
    language: str | None = None  # of an input transcript, as detected

    def transcript_heard(self, audio_end_ms: int) -> str:
        """The transcript up to the last word that ends by ``audio_end_ms``."""
        heard = 0
        for end_ms, chars in self.word_ends:
            if end_ms > audio_end_ms:
                break
            heard = chars
        return (self.transcript or "")[:heard]

    def render(self, dialect: Dialect, *, include_audio: bool) -> dict[str, Any]:
        wire: dict[str, Any] = {"type": dialect.content_type_out(self.type)}
        if self.type in {"input_text", "output_text"}:
            wire["text"] = self.text or ""
        elif self.type in {"input_audio", "output_audio"}:
            if include_audio and self.audio is not None:
                wire["audio"] = base64.b64encode(self.audio).decode("ascii")
            wire["transcript"] = self.transcript
        else:
            wire["image_url"] = self.image_url
            if self.detail is not None:
                wire["detail"] = self.detail
        return wire

    def plain_text(self) -> str:
        return (self.text if self.type in {"input_text", "output_text"} else self.transcript) or ""


class Item(BaseModel):
    id: str
    type: Literal["message", "function_call", "function_call_output"]
    status: ItemStatus = "completed"
    role: Role | None = None
    content: list[ContentPart] = []
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None

    def render(self, dialect: Dialect, *, include_audio: bool = False) -> dict[str, Any]:
        wire: dict[str, Any] = {"object": "realtime.item"} if dialect is Dialect.BETA else {}
        wire |= {"id": self.id, "type": self.type}
        if self.type == "message":
            wire |= {
                "status": self.status,
                "role": self.role,
                "content": [part.render(dialect, include_audio=include_audio) for part in self.content],
            }
        elif self.type == "function_call":
            wire |= {"status": self.status, "call_id": self.call_id, "name": self.name, "arguments": self.arguments}
        else:
            wire |= {"call_id": self.call_id, "output": self.output}
        return wire


class ContentIn(BaseModel):
    """A content part as a client sends it, in either dialect; checked by ``ItemIn.to_item``."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None
    image_url: str | None = None
    detail: str | None = None


class ItemIn(BaseModel):
    """An item as a client sends it. One loose shape (as beta has it); the rules live in ``to_item``."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(None, min_length=1, max_length=64)
    type: Literal["message", "function_call", "function_call_output"]
    status: ItemStatus | None = None
    role: Role | None = None
    content: list[ContentIn] | None = None
    call_id: str | None = Field(None, min_length=1)
    name: str | None = None
    arguments: str | None = None
    output: str | None = None

    def to_item(self, param: str = "item", audio_format: str = "pcm16") -> Item:
        """Check the item and build it; ``audio_format`` is the session's input format (for audio parts)."""
        item_id = self.id or new_id("item")
        if self.type == "function_call":
            if not self.name:
                raise _missing(f"{param}.name")
            return Item(
                id=item_id,
                type="function_call",
                status=self.status or "completed",
                call_id=self.call_id or new_id("call"),
                name=self.name,
                arguments=self.arguments or "",
            )
        if self.type == "function_call_output":
            if self.call_id is None:
                raise _missing(f"{param}.call_id")
            if self.output is None:
                raise _missing(f"{param}.output")
            return Item(id=item_id, type="function_call_output", call_id=self.call_id, output=self.output)
        if self.role is None:
            raise _missing(f"{param}.role")
        if not self.content:
            raise _missing(f"{param}.content")
        parts = [self._content_part(index, part, param, audio_format) for index, part in enumerate(self.content)]
        return Item(id=item_id, type="message", status=self.status or "completed", role=self.role, content=parts)

    def _content_part(self, index: int, part: ContentIn, param: str, audio_format: str) -> ContentPart:
        where = f"{param}.content[{index}]"
        kind = Dialect.content_type_in(part.type)
        allowed = _ALLOWED_CONTENT[self.role or "user"]
        if kind not in allowed:
            raise RealtimeError(
                f"Invalid value: '{part.type}'. Content of a {self.role} message must be one of: "
                + ", ".join(sorted(allowed))
                + ".",
                code="invalid_value",
                param=f"{where}.type",
            )
        if kind in {"input_text", "output_text"}:
            if part.text is None:
                raise _missing(f"{where}.text")
            return ContentPart(type=kind, text=part.text)
        if kind == "input_audio":
            if part.audio is None and part.transcript is None:
                raise _missing(f"{where}.audio")
            audio = decode_base64(part.audio, f"{where}.audio") if part.audio is not None else None
            return ContentPart(type=kind, audio=audio, audio_format=audio_format, transcript=part.transcript)
        if not part.image_url or not part.image_url.startswith("data:image/"):
            raise RealtimeError(
                "Invalid image: 'image_url' must be a data URL (data:image/...;base64,...).",
                code="invalid_value",
                param=f"{where}.image_url",
            )
        return ContentPart(type="input_image", image_url=part.image_url, detail=part.detail)


def decode_base64(value: str, param: str) -> bytes:
    """Strict base64: a client bug should be reported, not turned into noise."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RealtimeError(f"Invalid base64 in '{param}': {exc}.", code="invalid_value", param=param) from None


def _missing(param: str) -> RealtimeError:
    return RealtimeError(f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param)
