"""`stardag history`, `stardag builds` and `stardag explain`: what happened, and why."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stardag.cli._app import app
from stardag.cli._common import (
    TASK_HELP,
    JsonFlag,
    command,
    console,
    fail,
    print_json,
    registry,
    stores,
    task_id,
    when,
)


@app.command()
@command
def history(
    task: Annotated[str | None, typer.Argument(metavar="[TASK]", help=TASK_HELP)] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="At most this many runs.")
    ] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Runs of a task (or of every task), newest first, and audit verdicts."""
    from stardag.registry import _queries
    from stardag.registry._audits import verdicts

    known = registry()
    found = task_id(task, known) if task else None
    runs = known.read(lambda conn: _queries.runs(conn, found, limit=limit))
    audits = [v.__dict__ for v in verdicts(found, known)[:limit]]
    if as_json:
        print_json({"task_id": found, "runs": runs, "audits": audits})
        return
    _print_runs(runs)
    _print_audits(audits)


def _print_runs(runs: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="runs", title_justify="left", box=None)
    for column in ("started", "task", "outcome", "secs", "build", "digest", "error"):
        table.add_column(column)
    for run in runs:
        family = f"{run['namespace']}.{run['name']}" if run["namespace"] else run["name"]
        table.add_row(
            when(run["started"]),
            f"{family} {run['task_id'][:12]}",
            _outcome(run["outcome"]),
            f"{run['duration']:.2f}" if run["duration"] is not None else "-",
            run["build_id"][:8],
            (run["digest"] or "-")[:12],
            (run["error_type"] or "").rsplit(".", 1)[-1],
        )
    console().print(table if runs else "no runs recorded")


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
        str | None, typer.Argument(metavar="[BUILD]", help="A build id or prefix: its runs.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="At most this many builds.")
    ] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Recent builds, newest first (with BUILD: that build and every run in it)."""
    from stardag.registry import _queries

    known = registry()
    found = known.read(lambda conn: _queries.builds(conn, limit=limit, prefix=build))
    if build is not None:
        if len(found) != 1:
            fail(f"{len(found) or 'no'} builds match {build!r}; give a longer build id prefix")
        found[0]["runs"] = known.read(lambda conn: _queries.build_runs(conn, found[0]["id"]))
    if as_json:
        print_json(found)
        return
    _print_builds(found)
    if build is not None:
        _print_runs([r | {"build_id": found[0]["id"]} for r in found[0]["runs"]])


def _print_builds(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(box=None)
    for column in ("build", "started", "secs", "status", "ran", "cached", "failed", "where"):
        table.add_column(column)
    for row in rows:
        outcomes = row["outcomes"]
        secs = f"{row['ended'] - row['started']:.1f}" if row["ended"] else "-"
        status = {"succeeded": "green", "failed": "red"}.get(row["status"], "yellow")
        table.add_row(
            row["id"][:8],
            when(row["started"]),
            secs,
            f"[{status}]{row['status']}[/]",
            str(outcomes.get("computed", 0)),
            str(outcomes.get("cached", 0)),
            str(outcomes.get("failed", 0)),
            f"{row['username']}@{row['host']}",
        )
    console().print(table if rows else "no builds recorded")


@app.command()
@command
def explain(
    task: Annotated[str, typer.Argument(metavar="TASK", help=TASK_HELP)],
    as_json: JsonFlag = False,
) -> None:
    """Why a task would run in the next build, or why it is a cache hit."""
    from stardag._explain import explain as why
    from stardag._resolve import is_import_reference, task_named

    known = registry()
    if is_import_reference(task):
        named = task_named(task)
        found = why(named.id, known, stores(), spec=named.spec())
    else:
        found = why(task_id(task, known), known, stores())
    if as_json:
        print_json(found.__dict__)
        return
    out = console()
    out.print(f"[bold]{found.task_id[:12]}[/bold]: {found.verdict}")
    for reason in found.reasons:
        out.print(f"  {reason}", markup=False)
