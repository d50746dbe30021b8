"""The command line's one console and its ``fail``/``progress`` helpers.

Every command group prints through :data:`console` (stderr, so a command's own output on
stdout stays clean for pipes), turns an expected error into one red line and exit code 1
with :func:`fail`, and shows long work with :func:`progress`.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` in red and return the ``typer.Exit`` to raise."""
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def progress(*, remaining: bool = False) -> Progress:
    """A Rich progress display: description, bar, done/total, elapsed (or remaining) time."""
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn() if remaining else TimeElapsedColumn(),
        console=console,
    )


class Bars:
    """Progress bars keyed by stage name (for ``layers`` progress callbacks)."""

    def __init__(self, bar: Progress):
        self.progress = bar
        self.tasks: dict[str, TaskID] = {}

    def rows(self, stage: str, done: int, total: int) -> None:
        """Rows loaded of one stage (``layers.load`` callback)."""
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(f"load {stage}", total=max(total, 1))
        self.progress.update(self.tasks[stage], completed=done, total=max(total, 1))

    def fraction(self, stage: str, frac: float) -> None:
        """Share done of a generation step (``layers.demo`` callback)."""
        if "generate" not in self.tasks:
            self.tasks["generate"] = self.progress.add_task("generate", total=1.0)
        self.progress.update(
            self.tasks["generate"], completed=frac, description=f"generate: {stage}"
        )
