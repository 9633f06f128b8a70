"""Reports in the forms operators ask for: a table for people, JSON and CSV for tools, transcripts as text."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from typing import Any

from ..storage.transcripts import SessionSummary
from ..storage.usage import USAGE_FIELDS, UsageLine


def timestamp(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def usage_json(lines: Sequence[UsageLine]) -> str:
    return json.dumps([line.as_dict() for line in lines], indent=2, ensure_ascii=False)


def usage_csv(lines: Sequence[UsageLine]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(USAGE_FIELDS)
    for line in lines:
        writer.writerow(line.as_dict()[name] for name in USAGE_FIELDS)
    return out.getvalue()


def usage_table(lines: Sequence[UsageLine]) -> str:
    header = (
        "project",
        "key",
        "sessions",
        "responses",
        "text in",
        "cached",
        "text out",
        "audio in",
        "audio out",
        "audio min",
        "cost $",
    )
    rows = [
        (
            line.project or "(operator)",
            line.key_id or "-",
            line.sessions,
            line.responses,
            line.text_input_tokens,
            line.cached_text_tokens,
            line.text_output_tokens,
            line.audio_input_tokens,
            line.audio_output_tokens,
            f"{line.audio_minutes:.2f}",
            f"{line.cost_usd:.6f}",
        )
        for line in lines
    ]
    return _table(header, rows)


def sessions_table(sessions: Sequence[SessionSummary]) -> str:
    header = ("session", "project", "started (UTC)", "ended (UTC)", "why", "items", "audio min")
    rows = [
        (
            s.id,
            s.project or "(operator)",
            timestamp(s.started_at),
            timestamp(s.ended_at),
            s.end_reason or "open",
            s.items,
            f"{(s.input_audio_ms + s.output_audio_ms) / 60000:.2f}",
        )
        for s in sessions
    ]
    return _table(header, rows)


def transcript_json(session: SessionSummary) -> str:
    data = session.as_dict()
    data["items"] = [item.data | {"seq": item.seq} for item in session.transcript]
    return json.dumps(data, indent=2, ensure_ascii=False)


def transcript_text(session: SessionSummary) -> str:
    """One line per item: who, then what was said or done."""
    lines = [f"# session {session.id}, project {session.project or '(operator)'}, {timestamp(session.started_at)} UTC"]
    for item in session.transcript:
        if item.type == "function_call":
            who = "call"
        elif item.type == "function_call_output":
            who = "result"
        else:
            who = item.role or "?"
        lines.append(f"{who}: {item.text}")
    return "\n".join(lines) + "\n"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, header)), *[list(map(str, row)) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells
    )
