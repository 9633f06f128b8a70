"""``latency.png``: voice-to-voice latency distribution (left) and the per-stage split at the median (right).

matplotlib is imported only here, with its headless Agg backend, so ``parley bench`` runs without a display and
the rest of Parley never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise RuntimeError("charts need matplotlib: pip install 'parley[bench]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write(runs: Sequence[dict[str, Any]], path: Path) -> None:
    """One chart for one or more ``results.json`` payloads (one colour, one bar each)."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), width_ratios=[3, 2])
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for number, run in enumerate(runs):
        colour = colours[number % len(colours)]
        latencies = sorted(t["voice_to_voice_ms"] for t in run["turns"] if t["voice_to_voice_ms"] is not None)
        if not latencies:
            continue
        fractions = [(i + 1) / len(latencies) for i in range(len(latencies))]
        left.step(latencies, fractions, where="post", color=colour, label=f"{run['label']} (n={len(latencies)})")
        v2v = run["summary"]["voice_to_voice_ms"]
        left.axvline(v2v["p50"], color=colour, linestyle="--", linewidth=1)
        left.axvline(v2v["p95"], color=colour, linestyle=":", linewidth=1)
    left.set_xlabel("voice-to-voice latency, ms (dashed: p50, dotted: p95)")
    left.set_ylabel("fraction of turns")
    left.set_ylim(0, 1.02)
    left.grid(alpha=0.3)
    left.legend(loc="lower right", fontsize="small")
    left.set_title("Latency distribution (CDF)")
    _split_bars(right, runs, colours)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _split_bars(axes: Any, runs: Sequence[dict[str, Any]], colours: Sequence[str]) -> None:
    """A bar per run stacked by stage: each segment is the median time to that stage's end minus the previous."""
    labels, stage_colours = [], {}
    for number, run in enumerate(runs):
        split = run["summary"]["split"]
        labels.append(f"{run['label']}\n({split['source']})")
        bottom = 0.0
        for stage, stats in split["stages_ms"].items():
            if stats["p50"] is None:
                continue
            first = stage not in stage_colours
            colour = stage_colours.setdefault(stage, colours[len(stage_colours) % len(colours)])
            height = max(0.0, stats["p50"] - bottom)
            axes.bar(number, height, bottom=bottom, color=colour, alpha=0.8, width=0.6, label=stage if first else None)
            bottom += height
        v2v = run["summary"]["voice_to_voice_ms"]["p50"]
        if v2v is not None:
            axes.plot([number - 0.35, number + 0.35], [v2v, v2v], color="black", linewidth=1.5)
    axes.set_xticks(range(len(runs)), labels, fontsize="small")
    axes.set_xlim(-0.7, len(runs) - 0.3)
    axes.set_ylabel("ms after the last voiced sample (p50)")
    axes.set_title("Split by stage at the median (line: voice-to-voice p50)", fontsize="medium")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper left", fontsize="x-small")
