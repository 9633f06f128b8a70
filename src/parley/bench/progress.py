"""A progress bar on stderr while a voice benchmark runs (rich, which Typer already depends on)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .voice_latency import TurnResult


class TurnProgress:
    """Counts finished turns; the description shows the last one's latency or error."""

    def __init__(self, total: int, label: str) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[last]}"),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task(label, total=total, last="")
        self._errors = 0

    def __enter__(self) -> TurnProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._progress.stop()

    def turn_done(self, turn: TurnResult) -> None:
        if turn.ok:
            last = f"{turn.id}: {turn.voice_to_voice_ms:.0f} ms"
        else:
            self._errors += 1
            last = f"{turn.id}: {'; '.join(turn.errors)[:80]}"
        errors = f" ({self._errors} errors)" if self._errors else ""
        self._progress.update(self._task, advance=1, last=last + errors)
