"""Whether a response's audio kept ahead of a listener.

A player starts playing at the first audio byte and plays at real time without buffering ahead. Each later
delta is due when everything received before it has been played; if it arrives after that, the listener hears a
gap. The underrun of a response is the worst such lateness (0 when every delta arrived in time).
"""

from __future__ import annotations

from collections.abc import Sequence

# Lateness below this is jitter a real player's buffer absorbs; above it the listener would hear a gap.
TOLERANCE_MS = 50.0


def underrun_ms(deltas: Sequence[tuple[float, float]]) -> float:
    """Worst lateness in ms of ``(arrival seconds, audio ms carried)`` deltas, in arrival order."""
    if not deltas:
        return 0.0
    start = deltas[0][0]
    played_ms = 0.0
    worst = 0.0
    for arrived, audio_ms in deltas:
        worst = max(worst, (arrived - start) * 1000 - played_ms)
        played_ms += audio_ms
    return round(worst, 1)


def fell_behind(underrun: float, tolerance_ms: float = TOLERANCE_MS) -> bool:
    return underrun > tolerance_ms
