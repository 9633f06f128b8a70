"""The ASGI app: routes only. Sessions live in ``parley.realtime``; models in ``parley.services``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import __version__
from .auth import KeyRefused, Principal, identify, presented_key
from .client_secrets import ClientSecrets, client_secret_routes
from .config import Settings
from .ids import new_id
from .knowledge import KnowledgeLibrary
from .ops.limits import Limiter
from .ops.recorder import SessionRecorder
from .ops.routes import operator_routes
from .realtime.connection import offered_subprotocols, serve_connection
from .services import Services
from .storage import Storage
from .telephony.sip import SipLine
from .telephony.twilio import twilio_routes

WEB_PAGE = Path(__file__).parent / "web"


def server_name(settings: Settings) -> str:
    """How this server is named in session records (a restart on the same host and port closes its leftovers)."""
    return f"{socket.gethostname()}:{settings.port}"


def create_app(settings: Settings, storage: Storage, knowledge: KnowledgeLibrary | None = None) -> FastAPI:
    """The app; ``knowledge`` holds the knowledge bases, loaded before (a bad file must stop the start);
    ``storage`` is the database, opened and migrated before (one that is down must stop the start)."""
    services = Services(settings)
    library = knowledge or KnowledgeLibrary([])
    writer = storage.start_writer(settings.storage_buffer)
    instance = new_id("run")
    limiter = Limiter(storage, instance)
    prices = settings.prices

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Load in the background so /healthz answers while models load; /readyz tells when they are in.
        loading = asyncio.create_task(services.load())
        sip_line = SipLine(settings, services, library) if settings.sip_port else None
        if sip_line is not None:
            await sip_line.start()
        try:
            yield
        finally:
            if sip_line is not None:
                await sip_line.close()
            loading.cancel()
            with contextlib.suppress(BaseException):
                await loading
            await services.close()
            library.close()
            await asyncio.to_thread(storage.close)  # writes what sessions left queued

    app = FastAPI(title="Parley", version=__version__, lifespan=lifespan)
    app.state.services = services
    started = int(time.time())
    client_secrets = ClientSecrets()

    async def require_key(request: Request) -> Principal:
        key = presented_key(request.headers, request.query_params, ())
        try:
            principal = await identify(key, settings.api_keys, storage.keys)
        except KeyRefused as exc:
            raise HTTPException(status_code=401, detail=_error_body("invalid_api_key", str(exc))) from None
        request.state.principal = principal
        return principal

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        report = services.report()
        return JSONResponse(report, status_code=200 if report["status"] == "ready" else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", dependencies=[Depends(require_key)])
    async def list_models() -> dict[str, object]:
        served = [services.llm.id] if services.llm else []
        return {
            "object": "list",
            "data": [{"id": name, "object": "model", "created": started, "owned_by": "parley"} for name in served],
        }

    app.include_router(client_secret_routes(settings, client_secrets), dependencies=[Depends(require_key)])
    app.include_router(operator_routes(storage), dependencies=[Depends(require_key)])

    @app.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket) -> None:
        key = presented_key(websocket.headers, websocket.query_params, offered_subprotocols(websocket))
        secret = client_secrets.find(key)
        try:
            principal = secret.principal if secret else await identify(key, settings.api_keys, storage.keys)
        except KeyRefused as exc:
            await _deny(websocket, 401, "invalid_api_key", str(exc))
            return
        if not services.ready.is_set() or services.llm is None or services.voice is None:
            await _deny(websocket, 503, "not_ready", "The server is still loading its models; retry shortly.")
            return
        chosen = websocket.query_params.get("knowledge")
        if chosen and chosen not in library:
            await _deny(websocket, 400, "unknown_knowledge_base", library.unknown_message(chosen))
            return
        recorder = SessionRecorder(writer, principal, prices, limiter, server_name(settings), instance)
        if principal.key is not None and (refusal := await limiter.admit(principal.key, recorder)):
            body = {"error": {"message": refusal.message, "type": refusal.kind, "param": None,
                              "code": "rate_limit_exceeded"}}  # fmt: skip
            await websocket.send_denial_response(JSONResponse(body, status_code=429))
            return
        preset = secret.preset if secret else None
        try:
            await serve_connection(websocket, settings, services.llm, services.voice, library, preset, recorder)
        finally:
            if principal.key is not None:
                limiter.release(principal.key, recorder)

    app.include_router(twilio_routes(settings, services, library))

    # The talk page at "/"; mounted last, so every route above comes first.
    app.mount("/", StaticFiles(directory=WEB_PAGE, html=True), name="web")
    return app


def _error_body(code: str, message: str) -> dict[str, object]:
    return {"error": {"type": "invalid_request_error", "code": code, "message": message}}


async def _deny(websocket: WebSocket, status: int, code: str, message: str) -> None:
    """Refuse the upgrade with a real HTTP status, before any session exists."""
    await websocket.send_denial_response(JSONResponse(_error_body(code, message), status_code=status))
