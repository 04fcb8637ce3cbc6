"""`stardag history`, `stardag builds` and `stardag explain`: what happened, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from stardag.cli._app import app
from stardag.cli._common import (
    TASK_HELP,
    JsonFlag,
    command,
    console,
    print_json,
    registry,
    stores,
    task_id,
    verdict_json,
    when,
)

if TYPE_CHECKING:
    from stardag.registry import BuildInfo, RunInfo


@app.command()
@command
def history(
    task: Annotated[str | None, typer.Argument(metavar="TASK", help=TASK_HELP)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Runs of a task (or of every task), newest first, and its audit verdicts."""
    import stardag.registry
    from stardag.registry import _audits, _queries

    known = registry()
    found = task_id(task, known) if task else None
    if found is None:
        runs = known.read(lambda conn: _queries.recent_runs(conn, limit))
    else:
        entries = stardag.registry.history(found, limit=limit, registry=known)
        runs = [run for run in entries if run.outcome != "audited"]  # audits: own table
    verdicts = _audits.verdicts(found, known)[:limit]
    if as_json:
        print_json({"task_id": found, "runs": runs, "audits": [verdict_json(v) for v in verdicts]})
        return
    _print_runs(runs)
    failed = next((run for run in runs if run.outcome == "failed"), None)
    if found is not None and failed is not None:
        print_failure(failed)
    _print_audits([v.__dict__ for v in verdicts])


def _print_runs(runs: list[RunInfo]) -> None:
    from rich.table import Table

    table = Table(title="runs", title_justify="left", box=None)
    for column in ("started", "task", "outcome", "secs", "build", "digest", "error"):
        table.add_column(column)
    for run in runs:
        family = f"{run.namespace}.{run.name}" if run.namespace else run.name
        table.add_row(
            f"{run.started:%Y-%m-%d %H:%M:%S}",
            f"{family} {run.task_id[:12]}",
            _outcome(run.outcome),
            f"{run.duration:.2f}" if run.duration is not None else "-",
            run.build_id[:8],
            (run.digest or "-")[:12],
            _error_line(run),
        )
    console().print(table if runs else "no runs recorded")


ERROR_CHARS = 80


def _error_line(run: RunInfo) -> str:
    if not run.error_type:
        return ""
    kind = run.error_type.rsplit(".", 1)[-1]
    message = " ".join((run.error_message or "").split())
    line = f"{kind}: {message}" if message else kind
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"


def print_failure(run: RunInfo) -> None:
    """A failed run's error and traceback, as the task raised them."""
    out = console()
    family = f"{run.namespace}.{run.name}" if run.namespace else run.name
    out.print(
        f"[red]failed[/red] {family} {run.task_id[:12]} at {run.started:%Y-%m-%d %H:%M:%S}Z "
        f"in build {run.build_id[:8]}:"
    )
    kind = run.error_type or "error"
    text = run.traceback or f"{kind}: {run.error_message or ''}"
    out.print(text.rstrip(), markup=False, highlight=False, soft_wrap=True)


def _outcome(outcome: str) -> str:
    colour = {"computed": "green", "cached": "cyan", "failed": "red", "skipped": "yellow"}
    return f"[{colour.get(outcome, 'white')}]{outcome}[/]"


def _print_audits(audits: list[dict[str, Any]]) -> None:
    if not audits:
        return
    from rich.table import Table

    table = Table(title="audits", title_justify="left", box=None)
    for column in ("audited", "task", "verdict", "recorded", "re-run"):
        table.add_column(column)
    for audit in audits:
        colour = "green" if audit["verdict"] == "reproduced" else "red"
        table.add_row(
            when(audit["audited"]),
            audit["task_id"][:12],
            f"[{colour}]{audit['verdict']}[/]",
            (audit["recorded_digest"] or "-")[:12],
            (audit["audit_digest"] or "-")[:12],
        )
    console().print(table)


@app.command()
@command
def builds(
    build: Annotated[
        str | None, typer.Argument(metavar="BUILD", help="A build id or prefix: its runs.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Recent builds, newest first (with BUILD: that build and every run in it)."""
    import stardag.registry

    known = registry()
    if build is None:
        found = stardag.registry.builds(limit, registry=known)
    else:
        found = [stardag.registry.build(build, registry=known)]
    if as_json:
        print_json(found)
        return
    _print_builds(found)
    if build is not None:
        _print_runs(list(found[0].runs))


def _print_builds(rows: list[BuildInfo]) -> None:
    from rich.table import Table

    table = Table(box=None)
    for column in ("build", "started", "secs", "status", "ran", "cached", "failed", "where"):
        table.add_column(column)
    for row in rows:
        secs = f"{row.duration:.1f}" if row.duration is not None else "-"
        status = {"succeeded": "green", "failed": "red", "abandoned": "magenta"}.get(
            row.status, "yellow"
        )
        table.add_row(
            row.id[:8],
            f"{row.started:%Y-%m-%d %H:%M:%S}",
            secs,
            f"[{status}]{row.status}[/]",
            str(row.counts.get("computed", 0)),
            str(row.counts.get("cached", 0)),
            str(row.counts.get("failed", 0)),
            f"{row.environment.username}@{row.environment.host}",
        )
    console().print(table if rows else "no builds recorded")


@app.command()
@command
def explain(
    task: Annotated[str, typer.Argument(metavar="TASK", help=TASK_HELP)],
    as_json: JsonFlag = False,
) -> None:
    """Why a task would run in the next build, or why it is a cache hit."""
    import stardag.registry
    from stardag.maintenance._describe import self_judging
    from stardag.maintenance._resolve import is_import_reference, task_named

    known = registry()
    subject: Any = task_named(task) if is_import_reference(task) else task_id(task, known)
    if isinstance(subject, str):  # a TargetTask is complete by its own complete(): ask it
        subject = self_judging(subject, known, stores()) or subject
    found = stardag.registry.explain(subject, registry=known)
    if as_json:
        print_json(found)
        return
    print(found)
