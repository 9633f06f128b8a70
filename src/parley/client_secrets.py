"""Short-lived client secrets (``ek_...``) so browsers can connect without holding a real API key.

OpenAI's two minting endpoints: GA ``POST /v1/realtime/client_secrets`` and beta ``POST /v1/realtime/sessions``.
Minting needs a real key (when keys are configured); the secret is then accepted on the WebSocket until it
expires, for as many sessions as the client opens, and each of those sessions starts with the settings the
secret was minted with.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .auth import OPERATOR, Principal
from .config import Settings
from .ids import new_id
from .realtime.connection import DEFAULT_MODEL_NAME
from .realtime.dialect import Dialect
from .realtime.errors import RealtimeError, from_validation_error
from .realtime.session_config import BetaSessionUpdate, GASessionUpdate, SessionConfig

DEFAULT_LIFETIME_S = 600
SessionPreset = GASessionUpdate | BetaSessionUpdate


@dataclass(frozen=True)
class ClientSecret:
    value: str
    expires_at: float
    preset: SessionPreset
    principal: Principal = OPERATOR  # whose key minted it: its sessions count against that key's limits


class ClientSecrets:
    """The secrets minted by this process; expired ones are forgotten as new ones are minted."""

    def __init__(self) -> None:
        self._secrets: dict[str, ClientSecret] = {}

    def mint(
        self, preset: SessionPreset, lifetime_s: int = DEFAULT_LIFETIME_S, principal: Principal = OPERATOR
    ) -> ClientSecret:
        now = time.time()
        self._secrets = {value: s for value, s in self._secrets.items() if s.expires_at > now}
        secret = ClientSecret(new_id("ek"), now + lifetime_s, preset, principal)
        self._secrets[secret.value] = secret
        return secret

    def find(self, value: str | None) -> ClientSecret | None:
        """The unexpired secret with this value, if any."""
        secret = self._secrets.get(value) if value else None
        return secret if secret is not None and secret.expires_at > time.time() else None


class ExpiresAfter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    anchor: Literal["created_at"] = "created_at"
    seconds: Annotated[int, Field(ge=10, le=7200)] = DEFAULT_LIFETIME_S


class BetaClientSecret(BaseModel):
    expires_after: ExpiresAfter | None = None


class BetaSessionRequest(BetaSessionUpdate):
    """The beta body: session fields, plus how long the secret lives."""

    client_secret: BetaClientSecret | None = None


class ClientSecretRequest(BaseModel):
    """The GA body; only realtime sessions exist here (Parley has no transcription-only sessions)."""

    expires_after: ExpiresAfter | None = None
    session: GASessionUpdate | None = None


def client_secret_routes(settings: Settings, secrets: ClientSecrets) -> APIRouter:
    router = APIRouter()

    def session_for(preset: SessionPreset, dialect: Dialect) -> dict[str, Any]:
        config = SessionConfig.initial(
            dialect,
            id=new_id("sess"),
            model=DEFAULT_MODEL_NAME,
            expires_at=int(time.time() + settings.max_session_minutes * 60),
            instructions=settings.instructions,
        )
        return preset.apply(config).render(dialect)

    @router.post("/v1/realtime/client_secrets")
    async def create_client_secret(request: Request) -> JSONResponse:
        body = await _json_body(request)
        if isinstance(body, JSONResponse):
            return body
        session_type = (body.get("session") or {}).get("type") if isinstance(body.get("session"), dict) else None
        if session_type == "transcription":
            return _error(RealtimeError("Transcription sessions are not supported.", code="unsupported_value",
                                        param="session.type"))  # fmt: skip
        try:
            parsed = ClientSecretRequest.model_validate(body)
        except ValidationError as exc:
            return _error(from_validation_error(exc, data=body))
        preset = parsed.session or GASessionUpdate()
        lifetime = (parsed.expires_after or ExpiresAfter()).seconds
        secret = secrets.mint(preset, lifetime, _principal(request))
        return JSONResponse(
            {"value": secret.value, "expires_at": int(secret.expires_at), "session": session_for(preset, Dialect.GA)}
        )

    @router.post("/v1/realtime/sessions")
    async def create_beta_session(request: Request) -> JSONResponse:
        body = await _json_body(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            parsed = BetaSessionRequest.model_validate(body)
        except ValidationError as exc:
            return _error(from_validation_error(exc, data=body))
        preset = BetaSessionUpdate.model_validate(parsed.model_dump(exclude_unset=True, exclude={"client_secret"}))
        expires_after = parsed.client_secret.expires_after if parsed.client_secret else None
        secret = secrets.mint(preset, (expires_after or ExpiresAfter()).seconds, _principal(request))
        session = session_for(preset, Dialect.BETA)
        session["client_secret"] = {"value": secret.value, "expires_at": int(secret.expires_at)}
        return JSONResponse(session)

    return router


def _principal(request: Request) -> Principal:
    """Who minted the secret, as the routes' key check found it."""
    return getattr(request.state, "principal", OPERATOR)


async def _json_body(request: Request) -> dict[str, Any] | JSONResponse:
    """The request's JSON object (an empty body counts as ``{}``), or a 400 saying what is wrong."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        return _error(RealtimeError("The body is not valid JSON.", code="invalid_json"))
    if not isinstance(body, dict):
        return _error(RealtimeError("The body must be a JSON object.", code="invalid_type"))
    return body


def _error(exc: RealtimeError) -> JSONResponse:
    body = {"type": exc.type, "code": exc.code, "message": exc.message, "param": exc.param}
    return JSONResponse({"error": body}, status_code=400)
