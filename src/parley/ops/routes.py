"""The operator's HTTP routes: usage and transcripts. A stored key sees only its own project; an
environment key (or any caller, on a server without keys) sees every project."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ..auth import OPERATOR, Principal
from ..storage import Storage, transcripts, usage
from . import export


def parse_since(value: str | None) -> float | None:
    """``2025-01-31``, ``2025-01-31T12:00`` (UTC unless it says otherwise), or a span back from now: ``7d``,
    ``12h``, ``30m``."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    spans = {"d": 86400, "h": 3600, "m": 60}
    if value[-1:] in spans and value[:-1].replace(".", "", 1).isdigit():
        return dt.datetime.now(dt.UTC).timestamp() - float(value[:-1]) * spans[value[-1]]
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a date, a time or a span like 7d: {value!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def operator_routes(storage: Storage) -> APIRouter:
    router = APIRouter(prefix="/v1/parley")

    def scope(request: Request, project: str | None) -> str | None:
        """The project a request may see: a stored key's own, whatever it asked for."""
        principal: Principal = getattr(request.state, "principal", OPERATOR)
        return principal.project if principal.key is not None else project

    def since_of(value: str | None) -> float | None:
        try:
            return parse_since(value)
        except ValueError as exc:
            raise HTTPException(400, _error("invalid_value", str(exc), "since")) from None

    async def visible_session(request: Request, session_id: str) -> transcripts.SessionSummary:
        found = await asyncio.to_thread(transcripts.get_session, storage.engine, session_id)
        allowed = scope(request, None)
        if found is None or (allowed is not None and found.project != allowed):
            raise HTTPException(404, _error("session_not_found", f"No session {session_id!r}.", "session_id"))
        return found

    @router.get("/usage")
    async def usage_report(request: Request, project: str | None = None, since: str | None = None) -> JSONResponse:
        lines = await asyncio.to_thread(usage.report, storage.engine, scope(request, project), since_of(since))
        return JSONResponse({"object": "list", "data": [line.as_dict() for line in lines]})

    @router.get("/sessions")
    async def list_sessions(
        request: Request, project: str | None = None, since: str | None = None, limit: int = 100
    ) -> JSONResponse:
        found = await asyncio.to_thread(
            transcripts.list_sessions,
            storage.engine,
            scope(request, project),
            since_of(since),
            max(1, min(limit, 1000)),
        )
        return JSONResponse({"object": "list", "data": [s.as_dict() for s in found]})

    @router.get("/sessions/{session_id}")
    async def get_session(request: Request, session_id: str, format: Literal["json", "txt"] = "json") -> Response:
        found = await visible_session(request, session_id)
        if format == "txt":
            return PlainTextResponse(export.transcript_text(found))
        return Response(export.transcript_json(found), media_type="application/json")

    @router.delete("/sessions/{session_id}")
    async def delete_session(request: Request, session_id: str) -> JSONResponse:
        await visible_session(request, session_id)
        await asyncio.to_thread(transcripts.delete_session, storage.engine, session_id)
        return JSONResponse({"id": session_id, "object": "parley.session", "deleted": True})

    return router


def _error(code: str, message: str, param: str | None = None) -> dict[str, object]:
    return {"error": {"type": "invalid_request_error", "code": code, "message": message, "param": param}}
