"""`stardag build REF...`: build with a progress display, then a summary (or a plan).

A reference is `module:attr` naming a task, a list of tasks, a zero-argument
function returning them, or a task class made from `--param key=value` pairs.
`--dry-run` prints what would run and what is already complete, running nothing;
`--json` prints the plan or the build's summary as JSON.
"""

from __future__ import annotations

import enum
import sys
import traceback
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stardag.cli._app import app
from stardag.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    JsonFlag,
    command,
    console,
    print_json,
)

if TYPE_CHECKING:
    from stardag.task._base import BaseTask


class FailModeChoice(str, enum.Enum):
    """What the build does when a task fails."""

    fail_fast = "fail_fast"
    continue_ = "continue"


class _Outcome:
    """A listener that keeps the summary the build ends with, whether it touched a task, and
    each failed task's traceback as it was when the task failed (before the build re-raised
    it through its own frames and asyncio's)."""

    summary: Any = None
    touched_a_task = False

    def __init__(self) -> None:
        self.tracebacks: dict[int, str] = {}

    def handle(self, event: Any) -> None:
        from stardag.build._events import EventKind

        if event.kind is EventKind.BUILD_ENDED:
            self.summary = event.summary
        elif event.task is not None:
            self.touched_a_task = True
            if event.kind is EventKind.TASK_FAILED and event.error is not None:
                self.tracebacks[id(event.error)] = "".join(traceback.format_exception(event.error))

    def traceback_of(self, exc: BaseException) -> str:
        """The traceback of a task's error as it failed (else as it is now)."""
        found = self.tracebacks.get(id(exc))
        return found if found is not None else "".join(traceback.format_exception(exc))


@app.command()
@command
def build(
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="MODULE:ATTR",
            help="Tasks: a task, a list of tasks, a function returning them, "
            "or a task class (with --param).",
        ),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", metavar="KEY=VALUE", help="key=value for a task class (JSON values)."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", min=1, help="Threads for sync tasks.")
    ] = None,
    fail_mode: Annotated[
        FailModeChoice, typer.Option("--fail-mode", help="Stop at the first failure, or continue.")
    ] = FailModeChoice.fail_fast,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Show progress: live on a terminal, else a line per task (the default). "
            "--no-progress prints the summary only.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print what would run and what is complete; run nothing."),
    ] = False,
    as_json: JsonFlag = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Build tasks and their upstream, showing progress; exit 1 if anything failed."""
    import stardag as sd
    from stardag.build._events import BuildListener
    from stardag.build._progress import Progress
    from stardag.maintenance._resolve import parse_params, roots_named

    tasks = roots_named(targets, parse_params(param or []))
    if dry_run:
        _dry_run(tasks, as_json)
        return
    outcome = _Outcome()
    mode = sd.FailMode.CONTINUE if fail_mode is FailModeChoice.continue_ else sd.FailMode.FAIL_FAST
    listeners: list[BuildListener] = [outcome]
    if progress is not False and not quiet and (not as_json or progress):
        listeners.insert(0, Progress(sys.stderr, live=progress))
    try:
        summary = sd.build(tasks, fail_mode=mode, max_workers=workers, listeners=listeners)
    except KeyboardInterrupt:  # Ctrl-C: the build said what it waited for; say how it ended
        console().print(f"[yellow]build interrupted[/yellow]: {outcome.summary or 'not started'}")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # a task's own error (fail fast): show it, exit 1
        if isinstance(exc, sd.StardagError) and not outcome.touched_a_task:
            raise  # it stopped before any task (bad settings, a cycle, the registry): one line
        sys.stderr.write(outcome.traceback_of(exc))  # from the task's own frames
        if as_json and outcome.summary is not None:
            print_json(_summary_json(outcome.summary))
        else:
            _report_failures(outcome.summary, quiet)
        raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        print_json(_summary_json(summary))
    elif summary.ok:
        if not quiet:
            console().print(f"[green]build succeeded[/green]: {summary}")
    else:
        _report_failures(summary, quiet)
    if not summary.ok:
        raise typer.Exit(EXIT_FAILED)


def _summary_json(summary: Any) -> dict[str, Any]:
    count = summary.task_count
    return {
        "build_id": summary.build_id,
        "status": summary.status.value,
        "task_count": {
            "discovered": count.discovered,
            "previously_completed": count.previously_completed,
            "succeeded": count.succeeded,
            "failed": count.failed,
            "cancelled": count.cancelled,
            "skipped": count.skipped,
        },
        "remote_hits": summary.remote_hits,
        "duration_s": round(summary.duration, 3),
        "failures": [
            {
                "task_id": task_id,
                "task": summary.names.get(task_id, "?"),
                "error": f"{type(error).__name__}: {error}",
            }
            for task_id, error in summary.failures.items()
        ],
    }


def _dry_run(roots: list[BaseTask], as_json: bool) -> None:
    """Walk from the roots as a build would (complete tasks end the walk) and print it."""
    from stardag.task._base import flatten_task_struct

    order: list[BaseTask] = []
    complete: dict[str, bool] = {}
    upstream: dict[str, list[str]] = {}
    stack = list(reversed(roots))
    while stack:
        task = stack.pop()
        if task.id in complete:
            continue
        complete[task.id] = bool(task.complete())
        order.append(task)
        if not complete[task.id]:
            deps = flatten_task_struct(task.requires())
            upstream[task.id] = [d.id for d in deps]
            stack.extend(reversed(deps))
    root_ids = {r.id for r in roots}
    rows: list[dict[str, Any]] = [
        {
            "task_id": t.id,
            "task": f"{t.get_namespace()}.{t.get_name()}".lstrip("."),
            "complete": complete[t.id],
            "upstream": upstream.get(t.id, []),
            "root": t.id in root_ids,
        }
        for t in order
    ]
    to_run = sum(not r["complete"] for r in rows)
    if as_json:
        print_json(
            {
                "roots": [r.id for r in roots],
                "tasks": rows,
                "to_run": to_run,
                "previously_completed": len(rows) - to_run,
            }
        )
        return
    from rich.table import Table

    table = Table(title="What a build would do (nothing ran)")
    for column in ("task id", "task", "complete", "upstream", "root"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["task_id"][:12],
            row["task"],
            "yes" if row["complete"] else "no: would run",
            str(len(row["upstream"])) if not row["complete"] else "-",
            "yes" if row["root"] else "",
        )
    out = console()
    out.print(table)
    out.print(
        f"{len(rows)} task(s): {to_run} would run, {len(rows) - to_run} already complete "
        "(dry run: nothing ran)"
    )


def _report_failures(summary: Any, quiet: bool) -> None:
    out = _stderr_console() if quiet else console()
    if summary is None:
        out.print("[red]build failed[/red]")
        return
    for task_id, error in summary.failures.items():
        name = summary.names.get(task_id, "?")
        out.print(f"[red]failed[/red] {name} {task_id[:12]}: {type(error).__name__}: {error}")
    out.print(f"[red]build failed[/red]: {summary}")


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)
