"""Server settings from flags, environment (``PARLEY_*``) and defaults; profiles pick the models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from .storage.usage import Prices

Profile = Literal["fast", "default"]
RecognizerName = Literal["moonshine-base-en", "whisper-tiny.en", "whisper-base"]
SynthesizerName = Literal["piper", "kokoro", "espeak"]

# The language model each profile loads when no other is named (catalog names from parley.models).
PROFILE_LLMS: dict[Profile, str] = {
    "fast": "smollm2-135m-instruct",
    "default": "qwen2.5-coder-0.5b-instruct",
}

# The speech recognizer each profile loads (names from parley.engines.recognizers).
PROFILE_RECOGNIZERS: dict[Profile, RecognizerName] = {
    "fast": "moonshine-base-en",
    "default": "whisper-base",
}

# The speech synthesizers each profile loads, in order of preference: a language is spoken by the first that speaks
# it (Piper: English only; Kokoro: en, es, fr, hi, it, pt; espeak-ng: about a hundred languages).
PROFILE_SYNTHESIZERS: dict[Profile, tuple[SynthesizerName, ...]] = {
    "fast": ("piper", "espeak"),
    "default": ("kokoro", "espeak"),
}

# Language-model contexts each profile runs (generations at once). Each more maps the weights again and adds
# its own KV cache and buffers. The default profile, at 1438 MB peak with one, would add at least Qwen's 491 MB
# of weights again and pass 1.5 GB.
PROFILE_LLM_CONTEXTS: dict[Profile, int] = {"fast": 2, "default": 1}

DEFAULT_INSTRUCTIONS = "You are Parley, a helpful voice assistant. Keep your answers short: one to three sentences."

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    profile: Profile = "default"
    llm: str | None = Field(None, description="catalog name, model source or GGUF path; overrides the profile")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint that serves the LLM stage")
    llm_api_key: str | None = None
    llm_model: str | None = Field(None, description="model name at llm_base_url")
    recognizer: RecognizerName | None = Field(None, description="speech recognizer; overrides the profile")
    synthesizers: Annotated[list[SynthesizerName], NoDecode] = Field(
        [], description="speech synthesizers in order of preference; overrides the profile"
    )
    llm_context_tokens: int = Field(4096, ge=512)
    llm_threads: int | None = Field(None, ge=1)
    llm_contexts: int | None = Field(None, ge=1, le=16, description="local model generations at once")
    llama_cpu_variant: str | None = Field(
        None, description="llama.cpp CPU variant to run (haswell, zen4, ...); default: the best this CPU runs, no AMX"
    )
    speech_threads: int = Field(2, ge=1, description="worker threads for recognition and synthesis")
    early_start_ms: int = Field(
        32, ge=0, description="pause inside a turn after which the answer is prepared before the turn ends; 0: off"
    )
    instructions: str = DEFAULT_INSTRUCTIONS
    api_keys: Annotated[list[str], NoDecode] = []
    allow_insecure_public_bind: bool = False
    max_session_minutes: float = Field(60.0, gt=0)
    max_event_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    cache_dir: Path | None = None
    data_dir: Path | None = Field(None, description="where the SQLite database lives; default ~/.local/share/parley")
    database_url: str | None = Field(None, description="postgresql://user:password@host/db; default: SQLite")
    storage_buffer: int = Field(10_000, ge=1, description="database writes kept for retry while it fails")
    # US dollars per million tokens, for the usage ledger (defaults: gpt-4o-mini-realtime-preview's list prices).
    price_text_input: float = Field(0.60, ge=0)
    price_cached_text_input: float = Field(0.30, ge=0)
    price_text_output: float = Field(2.40, ge=0)
    price_audio_input: float = Field(10.0, ge=0)
    price_audio_output: float = Field(20.0, ge=0)
    knowledge: Annotated[list[str], NoDecode] = Field([], description="fact sheets: PATH or NAME=PATH")
    knowledge_top_k: int = Field(5, ge=1, le=50, description="facts given to the model for each turn")
    # Phone calls (parley.telephony).
    public_url: str | None = Field(
        None, description="the address callers' carriers reach this server at (https://host), for TwiML and signatures"
    )
    twilio_auth_token: str | None = Field(None, description="when set, Twilio requests must carry a valid signature")
    phone_voice: str = Field("alloy", description="the voice of phone calls, unless a call names another")
    phone_line_timeout_s: float = Field(10.0, gt=0, description="a call whose line sends nothing this long is ended")
    sip_port: int | None = Field(None, ge=1, le=65535, description="UDP port of the SIP line; unset: no SIP line")
    sip_address: str | None = Field(None, description="address announced in SDP for RTP; default: the listen host")

    @field_validator("api_keys", "knowledge", "synthesizers", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        """Several values in one variable: ``PARLEY_API_KEYS=key1,key2``, ``PARLEY_KNOWLEDGE=a.md,faq=b.csv``,
        ``PARLEY_SYNTHESIZERS=piper,kokoro,espeak``."""
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("synthesizers")
    @classmethod
    def _each_once(cls, value: list[SynthesizerName]) -> list[SynthesizerName]:
        if len(set(value)) != len(value):
            raise ValueError(f"name each speech synthesizer at most once, got {', '.join(value)}")
        return value

    @property
    def prices(self) -> Prices:
        from .storage.usage import Prices

        return Prices(
            text_input=self.price_text_input, cached_text_input=self.price_cached_text_input,
            text_output=self.price_text_output, audio_input=self.price_audio_input,
            audio_output=self.price_audio_output,
        )  # fmt: skip

    @property
    def llm_source(self) -> str:
        return self.llm or PROFILE_LLMS[self.profile]

    @property
    def llm_context_count(self) -> int:
        return self.llm_contexts or PROFILE_LLM_CONTEXTS[self.profile]

    @property
    def recognizer_name(self) -> RecognizerName:
        return self.recognizer or PROFILE_RECOGNIZERS[self.profile]

    @property
    def synthesizer_names(self) -> tuple[SynthesizerName, ...]:
        return tuple(self.synthesizers) or PROFILE_SYNTHESIZERS[self.profile]

    def check_bind(self, stored_keys: bool = False) -> None:
        """Listening beyond loopback without keys exposes the models to the network: refuse unless told.
        ``stored_keys``: the database holds usable keys (then every client needs one)."""
        keyed = bool(self.api_keys) or stored_keys
        if self.host not in LOOPBACK_HOSTS and not keyed and not self.allow_insecure_public_bind:
            raise ValueError(
                f"refusing to listen on {self.host} without API keys: create one (parley keys create), set "
                "PARLEY_API_KEYS (or --api-key), "
                "or pass --allow-insecure-public-bind if the network is trusted"
            )
