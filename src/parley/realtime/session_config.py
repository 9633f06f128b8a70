"""The effective session configuration, how each dialect updates it, and how each dialect renders it.

Fields Parley does not act on yet are still validated, stored and echoed, never refused: some clients
(Pipecat) treat any ``error`` as fatal, and OpenAI-written clients send fields we may not use.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..json_schema import schema_problem
from .dialect import Dialect
from .errors import RealtimeError

AudioFormatName = Literal["pcm16", "g711_ulaw", "g711_alaw"]
Modality = Literal["text", "audio"]
MaxTokens = Annotated[int, Field(ge=1, le=4096)] | Literal["inf"]

_GA_FORMATS: dict[str, AudioFormatName] = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
_GA_FORMAT_NAMES = {name: ga for ga, name in _GA_FORMATS.items()}

# The beta SDK types close ``session.model`` to these names; echoing anything else fails strict clients.
BETA_MODEL_NAMES = frozenset(
    {
        "gpt-realtime",
        "gpt-realtime-2025-08-28",
        "gpt-4o-realtime-preview",
        "gpt-4o-realtime-preview-2024-10-01",
        "gpt-4o-realtime-preview-2024-12-17",
        "gpt-4o-realtime-preview-2025-06-03",
        "gpt-4o-mini-realtime-preview",
        "gpt-4o-mini-realtime-preview-2024-12-17",
    }
)


class _Lenient(BaseModel):
    """Unknown keys are ignored rather than refused (see the module docstring)."""

    model_config = ConfigDict(extra="ignore")


class TurnDetection(_Lenient):
    """One flat shape for both VAD kinds, as the beta wire has it; rendering picks the fields per kind."""

    type: Literal["server_vad", "semantic_vad"]
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(None, ge=0, le=10_000)
    silence_duration_ms: int | None = Field(None, ge=0, le=10_000)
    idle_timeout_ms: int | None = Field(None, ge=0, le=3_600_000)
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None

    def with_defaults(self) -> TurnDetection:
        """Fill OpenAI's defaults so every field is echoed explicitly (openai-agents reads them)."""
        common = {
            "create_response": True if self.create_response is None else self.create_response,
            "interrupt_response": True if self.interrupt_response is None else self.interrupt_response,
        }
        if self.type == "semantic_vad":
            return TurnDetection(type="semantic_vad", eagerness=self.eagerness or "auto", **common)
        return TurnDetection(
            type="server_vad",
            threshold=0.5 if self.threshold is None else self.threshold,
            prefix_padding_ms=300 if self.prefix_padding_ms is None else self.prefix_padding_ms,
            silence_duration_ms=200 if self.silence_duration_ms is None else self.silence_duration_ms,
            idle_timeout_ms=self.idle_timeout_ms,
            **common,
        )

    def render(self, dialect: Dialect) -> dict[str, Any]:
        if self.type == "semantic_vad":
            keys = ["type", "eagerness", "create_response", "interrupt_response"]
        else:
            keys = ["type", "threshold", "prefix_padding_ms", "silence_duration_ms"]
            if dialect is Dialect.GA:
                keys.append("idle_timeout_ms")
            keys += ["create_response", "interrupt_response"]
        return {key: getattr(self, key) for key in keys}


class Transcription(_Lenient):
    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class NoiseReduction(_Lenient):
    type: Literal["near_field", "far_field"] | None = None


class FunctionTool(_Lenient):
    type: Literal["function"] = "function"
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = Field(None, max_length=1024)
    parameters: dict[str, Any] | None = None

    @field_validator("parameters")
    @classmethod
    def _a_json_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and (problem := schema_problem(value)):
            raise ValueError(problem)
        return value


def unique_tool_names(tools: list[FunctionTool] | None) -> list[FunctionTool] | None:
    names = [tool.name for tool in tools or ()]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"the tool name '{name}' is used more than once")
    return tools


class FunctionChoice(_Lenient):
    type: Literal["function"]
    name: str


ToolChoice = Literal["auto", "none", "required"] | FunctionChoice


def check_tool_choice(tools: list[FunctionTool], tool_choice: ToolChoice | str, param: str) -> None:
    """A forced function must be one of the tools (checked on the effective session or response)."""
    if isinstance(tool_choice, FunctionChoice) and tool_choice.name not in {tool.name for tool in tools}:
        offered = ", ".join(f"'{tool.name}'" for tool in tools) or "none"
        raise RealtimeError(
            f"Invalid value: tool_choice names the function '{tool_choice.name}', which is not among the "
            f"tools ({offered}).",
            code="invalid_value",
            param=param,
        )


class SessionConfig(BaseModel):
    """What a session does, independent of the dialect it is spoken in."""

    id: str
    model: str
    expires_at: int
    instructions: str
    modalities: list[Modality]
    voice: str = "alloy"
    speed: float = 1.0
    input_format: AudioFormatName = "pcm16"
    output_format: AudioFormatName = "pcm16"
    transcription: Transcription | None = None
    noise_reduction: NoiseReduction | None = None
    turn_detection: TurnDetection | None = TurnDetection(type="server_vad").with_defaults()
    tools: list[FunctionTool] = []
    tool_choice: ToolChoice | str = "auto"
    temperature: float = 0.8
    max_output_tokens: int | Literal["inf"] = "inf"
    tracing: Any = None
    truncation: Any = "auto"
    prompt: Any = None
    include: list[str] | None = None
    # Parley's extension: the knowledge base grounding this session's answers (None: none). Echoed only to
    # clients that chose one (query parameter or session.update), so strict OpenAI clients never see the key.
    knowledge: str | None = None
    echo_knowledge: bool = False

    @classmethod
    def initial(cls, dialect: Dialect, *, id: str, model: str, expires_at: int, instructions: str) -> SessionConfig:
        modalities: list[Modality] = ["audio"] if dialect is Dialect.GA else ["audio", "text"]
        return cls(id=id, model=model, expires_at=expires_at, instructions=instructions, modalities=modalities)

    def render(self, dialect: Dialect) -> dict[str, Any]:
        wire = self._render_ga() if dialect is Dialect.GA else self._render_beta()
        if self.echo_knowledge:
            wire["knowledge"] = self.knowledge
        return wire

    def _render_ga(self) -> dict[str, Any]:
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "output_modalities": list(self.modalities),
            "instructions": self.instructions,
            "tools": [tool.model_dump(exclude_none=True) for tool in self.tools],
            "tool_choice": _dump(self.tool_choice),
            "max_output_tokens": self.max_output_tokens,
            "tracing": self.tracing,
            "truncation": self.truncation,
            "prompt": self.prompt,
            "expires_at": self.expires_at,
            "include": self.include,
            "audio": {
                "input": {
                    "format": ga_format(self.input_format),
                    "transcription": _dump(self.transcription),
                    "noise_reduction": _dump(self.noise_reduction),
                    "turn_detection": self.turn_detection.render(Dialect.GA) if self.turn_detection else None,
                },
                "output": {"format": ga_format(self.output_format), "voice": self.voice, "speed": self.speed},
            },
        }

    def _render_beta(self) -> dict[str, Any]:
        tool_choice = self.tool_choice.name if isinstance(self.tool_choice, FunctionChoice) else self.tool_choice
        return {
            "id": self.id,
            "object": "realtime.session",
            "model": self.model if self.model in BETA_MODEL_NAMES else None,
            "expires_at": self.expires_at,
            "modalities": list(self.modalities),
            "instructions": self.instructions,
            "voice": self.voice,
            "speed": self.speed,
            "turn_detection": self.turn_detection.render(Dialect.BETA) if self.turn_detection else None,
            "input_audio_format": self.input_format,
            "output_audio_format": self.output_format,
            "input_audio_transcription": _dump(self.transcription),
            "input_audio_noise_reduction": _dump(self.noise_reduction),
            "tool_choice": tool_choice,
            "temperature": self.temperature,
            "max_response_output_tokens": self.max_output_tokens,
            "tools": [tool.model_dump(exclude_none=True) for tool in self.tools],
            "tracing": self.tracing,
        }


def ga_format(name: AudioFormatName) -> dict[str, Any]:
    wire: dict[str, Any] = {"type": _GA_FORMAT_NAMES[name]}
    if name == "pcm16":
        wire["rate"] = 24000
    return wire


def _dump(value: Any) -> Any:
    return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value


class GAAudioFormat(_Lenient):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
    rate: Literal[24000] | None = None

    @property
    def name(self) -> AudioFormatName:
        return _GA_FORMATS[self.type]


class GAVoiceId(_Lenient):
    id: str


class GAAudioInput(_Lenient):
    format: GAAudioFormat | None = None
    transcription: Transcription | None = None
    noise_reduction: NoiseReduction | None = None
    turn_detection: TurnDetection | None = None


class GAAudioOutput(_Lenient):
    format: GAAudioFormat | None = None
    voice: str | GAVoiceId | None = None
    speed: float | None = Field(None, ge=0.25, le=1.5)


class GAAudio(_Lenient):
    input: GAAudioInput | None = None
    output: GAAudioOutput | None = None


def single_modality(value: list[Modality] | None) -> list[Modality] | None:
    if value is not None and len(set(value)) != 1:
        raise ValueError("exactly one of 'text' or 'audio' is allowed")
    return value


class GASessionUpdate(_Lenient):
    """A GA ``session.update`` payload; ``type`` defaults to realtime for lenient clients."""

    type: Literal["realtime"] = "realtime"
    model: str | None = None
    instructions: str | None = None
    output_modalities: Annotated[list[Modality] | None, Field(min_length=1)] = None
    audio: GAAudio | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: ToolChoice | None = None
    max_output_tokens: MaxTokens | None = None
    tracing: Any = None
    truncation: Any = None
    prompt: Any = None
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None
    knowledge: str | None = None  # Parley's extension (see SessionConfig.knowledge)

    _one_modality = field_validator("output_modalities")(single_modality)
    _unique_tools = field_validator("tools")(unique_tool_names)

    def apply(self, config: SessionConfig) -> SessionConfig:
        changes: dict[str, Any] = {}
        simple = {"model", "instructions", "tools", "tool_choice", "max_output_tokens", "tracing", "truncation"}
        simple |= {"prompt", "include"}
        for name in simple & self.model_fields_set:
            value = getattr(self, name)
            if value is not None or name in {"tracing", "prompt", "include"}:
                changes[name] = value
        if self.output_modalities is not None:
            changes["modalities"] = self.output_modalities
        changes.update(knowledge_change(self))
        audio_in = self.audio.input if self.audio else None
        audio_out = self.audio.output if self.audio else None
        if audio_in is not None:
            fields = audio_in.model_fields_set
            if audio_in.format is not None:
                changes["input_format"] = audio_in.format.name
            if "transcription" in fields:
                changes["transcription"] = audio_in.transcription
            if "noise_reduction" in fields:
                changes["noise_reduction"] = audio_in.noise_reduction
            if "turn_detection" in fields:
                detection = audio_in.turn_detection
                changes["turn_detection"] = detection.with_defaults() if detection else None
        if audio_out is not None:
            if audio_out.format is not None:
                changes["output_format"] = audio_out.format.name
            if audio_out.voice is not None:
                voice = audio_out.voice
                changes["voice"] = voice.id if isinstance(voice, GAVoiceId) else voice
            if audio_out.speed is not None:
                changes["speed"] = audio_out.speed
        return config.model_copy(update=changes)


class BetaSessionUpdate(_Lenient):
    """A beta ``session.update`` payload: the flat session shape."""

    model: str | None = None
    instructions: str | None = None
    modalities: Annotated[list[Modality] | None, Field(min_length=1)] = None
    voice: str | None = None
    speed: float | None = Field(None, ge=0.25, le=1.5)
    input_audio_format: AudioFormatName | None = None
    output_audio_format: AudioFormatName | None = None
    input_audio_transcription: Transcription | None = None
    input_audio_noise_reduction: NoiseReduction | None = None
    turn_detection: TurnDetection | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: str | None = None
    temperature: float | None = Field(None, ge=0.6, le=1.2)
    max_response_output_tokens: MaxTokens | None = None
    tracing: Any = None
    knowledge: str | None = None  # Parley's extension (see SessionConfig.knowledge)

    _unique_tools = field_validator("tools")(unique_tool_names)

    def apply(self, config: SessionConfig) -> SessionConfig:
        fields = self.model_fields_set
        renames = {
            "modalities": "modalities",
            "input_audio_format": "input_format",
            "output_audio_format": "output_format",
            "max_response_output_tokens": "max_output_tokens",
        }
        changes: dict[str, Any] = {}
        for name in fields & {"model", "instructions", "voice", "speed", "tools", "temperature", *renames}:
            value = getattr(self, name)
            if value is not None:
                changes[renames.get(name, name)] = value
        if self.tool_choice is not None:
            changes["tool_choice"] = beta_tool_choice(self.tool_choice)
        if "tracing" in fields:
            changes["tracing"] = self.tracing
        if "input_audio_transcription" in fields:
            changes["transcription"] = self.input_audio_transcription
        if "input_audio_noise_reduction" in fields:
            changes["noise_reduction"] = self.input_audio_noise_reduction
        if "turn_detection" in fields:
            changes["turn_detection"] = self.turn_detection.with_defaults() if self.turn_detection else None
        changes.update(knowledge_change(self))
        return config.model_copy(update=changes)


def knowledge_change(update: GASessionUpdate | BetaSessionUpdate) -> dict[str, Any]:
    """A ``knowledge`` key in the update picks a base (null: none), and from then on it is echoed."""
    if "knowledge" not in update.model_fields_set:
        return {}
    return {"knowledge": update.knowledge, "echo_knowledge": True}


def beta_tool_choice(value: str) -> ToolChoice:
    """Beta names a forced function by its bare name."""
    if value in {"auto", "none", "required"}:
        return value  # type: ignore[return-value]
    return FunctionChoice(type="function", name=value)
