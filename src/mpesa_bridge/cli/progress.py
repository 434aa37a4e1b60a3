"""Progress bars for the CLI's long operations (rich, which typer brings), drawn on stderr.

Stdout keeps only the result lines, so scripts can read them; on a terminal the bar is live, and
elsewhere (a pipe, a log) rich prints it once, finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

Report = Callable[[int, int], None]  # (done, total)


@contextmanager
def progress_bar(description: str, *, unit: str = "") -> Iterator[Report]:
    """A bar for `description`; the yielded function moves it to (done, total)."""
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed}/{task.total} " + unit if unit else ""),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=max(total, 1))

        yield report
