"""Where astromodal talks to people: the stderr console for progress, status and logs, the stdout console
for results, and progress bars.

Results and tables go to stdout (:data:`out_console`), so ``astromodal models | grep cnn`` works;
progress, status and log lines go to stderr (:data:`console`). ``ASTROMODAL_NO_PROGRESS=1`` turns the
bars off. Library code (the benchmark runner, the trainer) and the CLI verbs share these, so core code
never imports the command-line package.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

#: progress, status and logs (stderr)
console = Console(stderr=True)
#: results and tables (stdout); plain text, no colour codes, when stdout is not a terminal
out_console = Console(soft_wrap=True)


def progress() -> Progress:
    """A rich progress bar (to stderr) with count, elapsed and remaining time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=os.environ.get("ASTROMODAL_NO_PROGRESS") == "1",
    )


def stage_ticker(bar: Progress) -> Callable[[str, int, int], None]:
    """``tick(stage, done, total)`` for work reported in stages: one bar of ``bar`` per stage, made on the
    stage's first report (``build cutouts``, ``build cube``)."""
    tasks: dict[str, Any] = {}

    def tick(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done)

    return tick
