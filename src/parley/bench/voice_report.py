"""Figures of a voice benchmark run: ``results.json``, ``results.md`` and (in ``chart``) ``latency.png``.

Percentiles are nearest-rank over the turns that completed. The split by stage comes from Parley's
``parley.turn.timings`` (ms after the server received the last voiced frame) where the server sent them, else
from wire events (ms after the client sent that frame). Each stage's figure is the percentile of the time from
that instant to the stage's end, not of the stage's own length.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from . import playback
from .voice_latency import Run, TurnResult
from .wer import corpus_wer

SERVER_STAGES = ("turn_detected", "transcript", "llm_first_token", "first_audio")
WIRE_SPLIT = {
    "turn_detected": "committed",
    "transcript": "transcript",
    "first_text": "first text",
    "first_audio": "first audio",
}


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered)),
        "p95": round(_percentile(ordered, 0.95)),
        "max": round(ordered[-1]),
    }


def split(turns: Sequence[TurnResult]) -> dict[str, Any]:
    """The per-stage split: server timings when any turn has them, else wire events."""
    timed = [t for t in turns if t.server_stages_ms]
    if timed:
        stages = {
            name: stats([v for t in timed if (v := (t.server_stages_ms or {}).get(name)) is not None])
            for name in SERVER_STAGES
        }
        return {"source": "parley.turn.timings", "turns": len(timed), "stages_ms": stages}
    stages = {
        name: stats([t.wire_stages_ms[w] for t in turns if w in t.wire_stages_ms]) for name, w in WIRE_SPLIT.items()
    }
    return {"source": "wire events", "turns": len(turns), "stages_ms": stages}


def _wer(turns: Sequence[TurnResult]) -> float | None:
    if not turns:
        return None
    languages = {t.lang for t in turns}
    language = languages.pop() if len(languages) == 1 else "und"
    return round(corpus_wer([t.text for t in turns], [t.transcript or "" for t in turns], language), 4)


def summary(turns: Sequence[TurnResult]) -> dict[str, Any]:
    ok = [t for t in turns if t.ok]
    wire = {stage for t in ok for stage in t.wire_stages_ms}
    return {
        "utterances": len(turns),
        "completed": len(ok),
        "errors": len(turns) - len(ok),
        "voice_to_voice_ms": stats([t.voice_to_voice_ms for t in ok if t.voice_to_voice_ms is not None]),
        "wer": _wer(ok),
        "split": split(ok),
        "wire_stages_ms": {s: stats([t.wire_stages_ms[s] for t in ok if s in t.wire_stages_ms]) for s in sorted(wire)},
        "vad_end_offset_ms": stats([t.vad_end_offset_ms for t in ok if t.vad_end_offset_ms is not None]),
        "missing_transcripts": sum(1 for t in ok if t.transcript is None),
        "split_turns": sum(1 for t in ok if t.vad_turns > 1),
        "underrun_ms": stats([t.underrun_ms for t in ok if t.underrun_ms is not None]),
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "system": platform.platform(), "python": platform.python_version()}


def report(run: Run, label: str, sources: Sequence[str]) -> dict[str, Any]:
    o = run.options
    behind = [s for s in run.sessions if s.fell_behind]
    return {
        "label": label,
        "settings": {
            "url": o.url,
            "dialect": o.dialect,
            "turn_detection": o.turn_detection,
            "silence_ms": o.silence_ms,
            "concurrency": o.concurrency,
            "turns_per_session": o.turns_per_session,
            "max_output_tokens": o.max_output_tokens,
            "stagger_s": run.stagger_s,
            "timeout_s": o.timeout_s,
            "timings_requested": o.timings,
            "speech": list(sources),
        },
        "machine": machine(),
        "wall_s": run.wall_s,
        "summary": summary(run.turns),
        "real_time": {
            "tolerance_ms": playback.TOLERANCE_MS,
            "fell_behind": bool(behind),
            "sessions_behind": len(behind),
            "underrun_max_ms": max((s.underrun_max_ms for s in run.sessions), default=0.0),
            "send_lag_max_ms": max((s.send_lag_max_ms for s in run.sessions), default=0.0),
        },
        "sessions": [{**asdict(s), "fell_behind": s.fell_behind} for s in run.sessions],
        "turns": [asdict(t) for t in run.turns],
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else str(value)


def _wer_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def headline_header() -> list[str]:
    return [
        "| run | utterances | errors | voice-to-voice p50 ms | p95 ms | max ms | WER | fell behind real time |",
        "|---|---|---|---|---|---|---|---|",
    ]


def headline_row(data: dict[str, Any]) -> str:
    s, rt = data["summary"], data["real_time"]
    v = s["voice_to_voice_ms"]
    behind = f"{'yes' if rt['fell_behind'] else 'no'} (worst {rt['underrun_max_ms']:g} ms)"
    return (
        f"| {data['label']} | {s['utterances']} | {s['errors']} | {_ms(v['p50'])} | {_ms(v['p95'])} | "
        f"{_ms(v['max'])} | {_wer_cell(s['wer'])} | {behind} |"
    )


def markdown(data: dict[str, Any]) -> str:
    """The headline row, the split by stage, a row per folder and, with several sessions at once, per session."""
    s, rt, settings = data["summary"], data["real_time"], data["settings"]
    sp = s["split"]
    origin = (
        "ms after the server received the last voiced frame (parley.turn.timings)"
        if sp["source"] == "parley.turn.timings"
        else "ms after the client sent the last voiced frame (wire events)"
    )
    lines = [
        *headline_header(),
        headline_row(data),
        "",
        f"Settings: {settings['dialect']} dialect, {settings['turn_detection']}"
        + (f" (silence {settings['silence_ms']} ms)" if settings["turn_detection"] == "server_vad" else "")
        + f", concurrency {settings['concurrency']}, {settings['turns_per_session'] or 'all'} utterance(s) per session."
        f" Fell behind real time: some answer's audio reached a real-time player more than {rt['tolerance_ms']:g} ms"
        f" after it was due; the client's own frames were at worst {rt['send_lag_max_ms']:g} ms late.",
        "",
        f"| stage, {origin} | p50 | p95 | max |",
        "|---|---|---|---|",
    ]
    for stage, st in sp["stages_ms"].items():
        lines.append(f"| {stage} | {_ms(st['p50'])} | {_ms(st['p95'])} | {_ms(st['max'])} |")
    lines += [
        "",
        "| folder | utterances | errors | voice-to-voice p50 ms | VAD end - last voiced sample p50 ms | WER |",
        "|---|---|---|---|---|---|",
    ]
    turns = [TurnResult(**t) for t in data["turns"]]
    for folder in dict.fromkeys(t.folder for t in turns):
        f = summary([t for t in turns if t.folder == folder])
        lines.append(
            f"| {folder} | {f['utterances']} | {f['errors']} | {_ms(f['voice_to_voice_ms']['p50'])} | "
            f"{_ms(f['vad_end_offset_ms']['p50'])} | {_wer_cell(f['wer'])} |"
        )
    if settings["concurrency"] > 1:
        lines += ["", "| session | lane | started s | utterances | worst underrun ms | fell behind | errors |"]
        lines.append("|---|---|---|---|---|---|---|")
        for x in data["sessions"]:
            lines.append(
                f"| {x['index']} | {x['lane']} | {x['started_s']} | {len(x['utterances'])} | "
                f"{x['underrun_max_ms']:g} | {'yes' if x['fell_behind'] else 'no'} | {len(x['errors'])} |"
            )
    return "\n".join(lines) + "\n"


def comparison(runs: Sequence[dict[str, Any]]) -> str:
    """One headline row per run, then the split by stage side by side."""
    lines = [*headline_header(), *(headline_row(r) for r in runs), ""]
    lines.append(
        "| stage p50 ms | " + " | ".join(f"{r['label']} ({r['summary']['split']['source']})" for r in runs) + " |"
    )
    lines.append("|---" * (len(runs) + 1) + "|")
    stages = dict.fromkeys(stage for r in runs for stage in r["summary"]["split"]["stages_ms"])
    for stage in stages:
        cells = [_ms(r["summary"]["split"]["stages_ms"].get(stage, {}).get("p50")) for r in runs]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
