"""`stardag build MODULE:ATTR`: build with a progress display, then a summary."""

from __future__ import annotations

import enum
import sys
import traceback
from typing import Annotated, Any

import typer

from stardag.cli._app import app
from stardag.cli._common import EXIT_FAILED, command, console


class FailModeChoice(str, enum.Enum):
    """What the build does when a task fails."""

    fail_fast = "fail_fast"
    continue_ = "continue"


class _Outcome:
    """A listener that keeps the summary the build ends with."""

    summary: Any = None

    def handle(self, event: Any) -> None:
        from stardag.build._events import EventKind

        if event.kind is EventKind.BUILD_ENDED:
            self.summary = event.summary


@app.command()
@command
def build(
    target: Annotated[
        str, typer.Argument(metavar="MODULE:ATTR", help="A task, or a list of tasks.")
    ],
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", min=1, help="Threads for sync tasks.")
    ] = None,
    fail_mode: Annotated[
        FailModeChoice, typer.Option("--fail-mode", help="Stop at the first failure, or continue.")
    ] = FailModeChoice.fail_fast,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Live display (default: on a terminal)."),
    ] = None,
) -> None:
    """Build a task and its upstream, showing progress; exit 1 if anything failed."""
    import stardag as sd
    from stardag.build._events import BuildListener
    from stardag.build._progress import Progress
    from stardag.maintenance._resolve import tasks_named

    tasks = tasks_named(target)
    outcome = _Outcome()
    mode = sd.FailMode.CONTINUE if fail_mode is FailModeChoice.continue_ else sd.FailMode.FAIL_FAST
    listeners: list[BuildListener] = [Progress(sys.stderr, live=progress), outcome]
    try:
        sd.build(tasks, fail_mode=mode, max_workers=workers, listeners=listeners)
    except sd.BuildFailedError as exc:
        _report_failures(exc.summary)
        raise typer.Exit(EXIT_FAILED) from None
    except Exception as exc:  # a task's own error (fail fast): show it, exit 1
        if isinstance(exc, sd.StardagError) and outcome.summary is None:
            raise  # the build never started (a cycle, an unwritable registry): one line
        traceback.print_exception(exc, file=sys.stderr)
        _report_failures(outcome.summary)
        raise typer.Exit(EXIT_FAILED) from None
    console().print(f"[green]build succeeded[/green]: {outcome.summary}")


def _report_failures(summary: Any) -> None:
    out = console()
    if summary is None:
        out.print("[red]build failed[/red]")
        return
    for task_id, error in summary.failures.items():
        name = summary.names.get(task_id, "?")
        out.print(f"[red]failed[/red] {name} {task_id[:12]}: {type(error).__name__}: {error}")
    out.print(f"[red]build failed[/red]: {summary}")
