"""``parley keys``, ``parley usage`` and ``parley sessions``: the operator's commands, on the same database the
server uses (``PARLEY_DATABASE_URL``, else the SQLite file under ``PARLEY_DATA_DIR``)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Literal

import typer

from ..config import Settings
from ..storage import Storage, StorageUnavailable, open_storage, transcripts, usage
from . import export
from .routes import parse_since

keys_app = typer.Typer(help="Projects' API keys: create (shown once), list, revoke.", no_args_is_help=True)
sessions_app = typer.Typer(help="Recorded sessions and their transcripts.", no_args_is_help=True)


def storage() -> Storage:
    """The database, or exit 2 with the reason."""
    try:
        settings = Settings()
        return open_storage(settings.database_url, settings.data_dir)
    except (StorageUnavailable, ValueError) as exc:
        typer.echo(f"parley: {exc}", err=True)
        raise typer.Exit(2) from None


def parse_expires(value: str) -> float:
    """A date or time (UTC unless it says otherwise), or a span from now: ``30d``, ``12h``, ``90m``."""
    spans = {"d": 86400, "h": 3600, "m": 60}
    if value[-1:] in spans and value[:-1].replace(".", "", 1).isdigit():
        return dt.datetime.now(dt.UTC).timestamp() + float(value[:-1]) * spans[value[-1]]
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date, a time or a span like 30d: {value!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def since_option(value: str | None) -> float | None:
    try:
        return parse_since(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@keys_app.command("create")
def create_key(
    project: Annotated[str, typer.Option(help="The project the key belongs to (created on first use)")],
    rpm: Annotated[int | None, typer.Option(min=1, help="Sessions the key may open per minute")] = None,
    max_sessions: Annotated[int | None, typer.Option(min=1, help="Sessions the key may hold open at once")] = None,
    minutes_per_day: Annotated[float | None, typer.Option(min=0, help="Audio minutes (in and out) per UTC day")] = None,
    expires: Annotated[str | None, typer.Option(help="When it stops working: 2026-12-31, or 30d, 12h")] = None,
) -> None:
    """Create a key and print its secret: it is shown this once, and only its hash is kept."""
    if not project.strip():
        raise typer.BadParameter("the project needs a name", param_hint="--project")
    expires_at = parse_expires(expires) if expires else None
    db = storage()
    secret, record = db.keys.create(
        project, rpm=rpm, max_sessions=max_sessions, minutes_per_day=minutes_per_day, expires_at=expires_at
    )
    db.close()
    typer.echo(secret)
    typer.echo(
        f"key {record.id} for project {record.project!r}: keep the secret above, it is not shown again", err=True
    )


@keys_app.command("list")
def list_keys(
    project: Annotated[str | None, typer.Option(help="Only this project's keys")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON")] = False,
) -> None:
    """Every key: id, project, the first characters of its secret, limits, and whether it works."""
    db = storage()
    keys = db.keys.list(project)
    db.close()
    now = dt.datetime.now(dt.UTC).timestamp()
    if as_json:
        typer.echo(json.dumps([k.__dict__ | {"usable": k.problem(now) is None} for k in keys], indent=2))
        return
    header = ("id", "project", "secret", "rpm", "sessions", "min/day", "expires (UTC)", "state")
    rows = [
        (
            k.id,
            k.project,
            k.prefix + "...",
            k.rpm or "-",
            k.max_sessions or "-",
            "-" if k.minutes_per_day is None else f"{k.minutes_per_day:g}",
            export.timestamp(k.expires_at),
            "revoked" if k.revoked_at else "expired" if k.problem(now) else "active",
        )
        for k in keys
    ]
    typer.echo(export._table(header, rows))


@keys_app.command("revoke")
def revoke_key(
    key: Annotated[str, typer.Argument(help="The key's id, or the first characters `keys list` shows")],
) -> None:
    """Revoke a key: from now on it is refused (HTTP 401); sessions already open run on."""
    db = storage()
    revoked = db.keys.revoke(key.removesuffix("..."))
    db.close()
    if revoked is None:
        typer.echo(f"parley: no single key matches {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {revoked.id} ({revoked.project})")


def usage_command(
    project: Annotated[str | None, typer.Option(help="Only this project")] = None,
    since: Annotated[str | None, typer.Option(help="From this date or time (UTC), or a span back: 7d, 12h")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="As CSV")] = False,
) -> None:
    """Tokens, audio minutes and cost per project and key."""
    start = since_option(since)
    db = storage()
    lines = usage.report(db.engine, project, start)
    db.close()
    typer.echo(
        export.usage_json(lines) if as_json else export.usage_csv(lines) if as_csv else export.usage_table(lines)
    )


@sessions_app.command("list")
def list_sessions(
    project: Annotated[str | None, typer.Option(help="Only this project")] = None,
    since: Annotated[str | None, typer.Option(help="Started from this date or time (UTC), or a span back")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON")] = False,
) -> None:
    """Sessions, newest first."""
    start = since_option(since)
    db = storage()
    found = transcripts.list_sessions(db.engine, project, start, limit)
    db.close()
    typer.echo(json.dumps([s.as_dict() for s in found], indent=2) if as_json else export.sessions_table(found))


def _session(session_id: str) -> transcripts.SessionSummary:
    db = storage()
    found = transcripts.get_session(db.engine, session_id)
    db.close()
    if found is None:
        typer.echo(f"parley: no session {session_id!r}", err=True)
        raise typer.Exit(1)
    return found


@sessions_app.command("show")
def show_session(session_id: str) -> None:
    """A session's transcript, one line per item."""
    typer.echo(export.transcript_text(_session(session_id)), nl=False)


@sessions_app.command("export")
def export_session(
    session_id: str, format: Annotated[Literal["json", "txt"], typer.Option(help="json or txt")] = "json"
) -> None:
    """A session and its items, for keeping elsewhere."""
    found = _session(session_id)
    typer.echo(export.transcript_json(found) if format == "json" else export.transcript_text(found), nl=False)


@sessions_app.command("delete")
def delete_session(session_id: str) -> None:
    """Delete a session's transcript (its usage rows stay: they are the bill)."""
    db = storage()
    deleted = transcripts.delete_session(db.engine, session_id)
    db.close()
    if not deleted:
        typer.echo(f"parley: no session {session_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"deleted {session_id}")
