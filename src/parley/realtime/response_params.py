"""Per-response settings: the session's, overridden by what ``response.create`` carries, per dialect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .conversation import Conversation
from .errors import RealtimeError, from_validation_error
from .items import Item, ItemIn
from .session_config import (
    AudioFormatName,
    FunctionTool,
    GAAudioFormat,
    GAVoiceId,
    MaxTokens,
    Modality,
    SessionConfig,
    ToolChoice,
    beta_tool_choice,
    single_modality,
    unique_tool_names,
)

Metadata = Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)]


@dataclass
class ResponseParams:
    output_modalities: list[Modality]
    voice: str
    output_format: AudioFormatName
    instructions: str
    max_output_tokens: int | Literal["inf"]
    temperature: float
    tools: list[FunctionTool]
    tool_choice: ToolChoice | str
    in_conversation: bool
    metadata: dict[str, str] | None
    input_items: list[Item] | None = None  # a fresh context instead of the conversation


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _ItemReference(_Lenient):
    type: Literal["item_reference"]
    id: str


class _CommonCreate(_Lenient):
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    conversation: str | None = None
    metadata: Metadata | None = None
    input: list[dict[str, Any]] | None = None

    _unique_tools = field_validator("tools")(unique_tool_names)

    def _resolve_input(self, conversation: Conversation, audio_format: str) -> list[Item] | None:
        if self.input is None:
            return None
        items: list[Item] = []
        for index, raw in enumerate(self.input):
            param = f"response.input[{index}]"
            try:
                if raw.get("type") == "item_reference":
                    reference = _ItemReference.model_validate(raw)
                    items.append(conversation.get(reference.id, f"{param}.id"))
                else:
                    items.append(ItemIn.model_validate(raw).to_item(param, audio_format))
            except ValidationError as exc:
                raise from_validation_error(exc, param, raw) from None
        return items

    def _in_conversation(self) -> bool:
        if self.conversation in (None, "auto"):
            return True
        if self.conversation == "none":
            return False
        raise RealtimeError(
            f"Invalid value: '{self.conversation}'. Supported values are: 'auto' and 'none'.",
            code="invalid_value",
            param="response.conversation",
        )


class GAResponseCreate(_CommonCreate):
    class _AudioOutput(_Lenient):
        format: GAAudioFormat | None = None
        voice: str | GAVoiceId | None = None

    class _Audio(_Lenient):
        output: GAResponseCreate._AudioOutput | None = None

    output_modalities: Annotated[list[Modality] | None, Field(min_length=1)] = None
    audio: _Audio | None = None
    max_output_tokens: MaxTokens | None = None
    tool_choice: ToolChoice | None = None

    _one_modality = field_validator("output_modalities")(single_modality)

    def to_params(self, session: SessionConfig, conversation: Conversation) -> ResponseParams:
        output = self.audio.output if self.audio and self.audio.output else None
        voice = output.voice if output else None
        return ResponseParams(
            output_modalities=self.output_modalities or list(session.modalities),
            voice=(voice.id if isinstance(voice, GAVoiceId) else voice) or session.voice,
            output_format=output.format.name if output and output.format else session.output_format,
            instructions=session.instructions if self.instructions is None else self.instructions,
            max_output_tokens=self.max_output_tokens or session.max_output_tokens,
            temperature=session.temperature,
            tools=session.tools if self.tools is None else self.tools,
            tool_choice=self.tool_choice or session.tool_choice,
            in_conversation=self._in_conversation(),
            metadata=self.metadata,
            input_items=self._resolve_input(conversation, session.input_format),
        )


class BetaResponseCreate(_CommonCreate):
    modalities: Annotated[list[Modality] | None, Field(min_length=1)] = None
    voice: str | None = None
    output_audio_format: AudioFormatName | None = None
    temperature: float | None = Field(None, ge=0.6, le=1.2)
    max_response_output_tokens: MaxTokens | None = None
    tool_choice: str | None = None

    def to_params(self, session: SessionConfig, conversation: Conversation) -> ResponseParams:
        return ResponseParams(
            output_modalities=self.modalities or list(session.modalities),
            voice=self.voice or session.voice,
            output_format=self.output_audio_format or session.output_format,
            instructions=session.instructions if self.instructions is None else self.instructions,
            max_output_tokens=self.max_response_output_tokens or session.max_output_tokens,
            temperature=self.temperature or session.temperature,
            tools=session.tools if self.tools is None else self.tools,
            tool_choice=beta_tool_choice(self.tool_choice) if self.tool_choice else session.tool_choice,
            in_conversation=self._in_conversation(),
            metadata=self.metadata,
            input_items=self._resolve_input(conversation, session.input_format),
        )
