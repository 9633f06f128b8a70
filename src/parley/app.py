"""The ASGI app: routes only. Sessions live in ``parley.realtime``; models in ``parley.services``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import __version__
from .auth import key_accepted, presented_key
from .client_secrets import ClientSecrets, client_secret_routes
from .config import Settings
from .knowledge import KnowledgeLibrary
from .realtime.connection import offered_subprotocols, serve_connection
from .services import Services
from .telephony.sip import SipLine
from .telephony.twilio import twilio_routes

WEB_PAGE = Path(__file__).parent / "web"


def create_app(settings: Settings, knowledge: KnowledgeLibrary | None = None) -> FastAPI:
    """The app; ``knowledge`` holds the knowledge bases, loaded before (a bad file must stop the start)."""
    services = Services(settings)
    library = knowledge or KnowledgeLibrary([])

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

    app = FastAPI(title="Parley", version=__version__, lifespan=lifespan)
    app.state.services = services
    started = int(time.time())
    client_secrets = ClientSecrets()

    def require_key(request: Request) -> None:
        key = presented_key(request.headers, request.query_params, ())
        if not key_accepted(key, settings.api_keys):
            raise HTTPException(status_code=401, detail=_error_body("invalid_api_key", "Missing or invalid API key."))

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

    @app.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket) -> None:
        key = presented_key(websocket.headers, websocket.query_params, offered_subprotocols(websocket))
        secret = client_secrets.find(key)
        if secret is None and not key_accepted(key, settings.api_keys):
            await _deny(websocket, 401, "invalid_api_key", "Missing or invalid API key.")
            return
        if not services.ready.is_set() or services.llm is None or services.voice is None:
            await _deny(websocket, 503, "not_ready", "The server is still loading its models; retry shortly.")
            return
        chosen = websocket.query_params.get("knowledge")
        if chosen and chosen not in library:
            await _deny(websocket, 400, "unknown_knowledge_base", library.unknown_message(chosen))
            return
        preset = secret.preset if secret else None
        await serve_connection(websocket, settings, services.llm, services.voice, library, preset)

    app.include_router(twilio_routes(settings, services, library))

    # The talk page at "/"; mounted last, so every route above comes first.
    app.mount("/", StaticFiles(directory=WEB_PAGE, html=True), name="web")
    return app


def _error_body(code: str, message: str) -> dict[str, object]:
    return {"error": {"type": "invalid_request_error", "code": code, "message": message}}


async def _deny(websocket: WebSocket, status: int, code: str, message: str) -> None:
    """Refuse the upgrade with a real HTTP status, before any session exists."""
    await websocket.send_denial_response(JSONResponse(_error_body(code, message), status_code=status))
