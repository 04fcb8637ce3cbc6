"""`stardag gc`: delete what no root reaches; a dry run unless `--apply`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from stardag.cli._app import app
from stardag.cli._common import (
    JsonFlag,
    command,
    console,
    duration,
    lite_registry,
    print_json,
    registry,
    size,
    store,
    task_id,
)

if TYPE_CHECKING:
    from stardag.maintenance._gc import GcPlan
    from stardag.maintenance._sweep import GcResult
    from stardag.registry import Registry


@app.command()
@command
def gc(
    tasks: Annotated[
        list[str] | None,
        typer.Argument(metavar="TASK", help="Tasks to keep (roots).", show_default=False),
    ] = None,
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", min=0, help="Keep the last N builds.")
    ] = None,
    keep_since: Annotated[
        str | None,
        typer.Option("--keep-since", metavar="DURATION", help="Keep builds newer than 7d, 12h."),
    ] = None,
    grace: Annotated[
        str | None,
        typer.Option("--grace", metavar="DURATION", help="Keep anything used this recently (1h)."),
    ] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Delete (default: a dry run).")] = False,
    why: Annotated[
        str | None, typer.Option("--why", metavar="TASK|DIGEST", help="Why is it kept?")
    ] = None,
    root: Annotated[
        str, typer.Option("--root", metavar="KEY", help="The root key of the store.")
    ] = "default",
    as_json: JsonFlag = False,
) -> None:
    """Delete records and blobs no root reaches: pins, recent builds, named tasks.

    A dry run by default: it says what it would delete (by task family) and what it
    keeps (by reason). Anything written or reused within the grace period is kept.
    """
    from stardag.maintenance import _settings
    from stardag.maintenance._bulk import collector_paused
    from stardag.maintenance._gc import DEFAULT_GRACE, GcRoots, mark
    from stardag.maintenance._sweep import sweep

    with collector_paused():  # a one-shot process: its 100,000-task plan has no cycles
        # A dry run that names nothing only reads: a plain SQLite registry through
        # `sqlite3` (no SQLAlchemy to import); resolving names and deleting open it whole.
        lite = None if tasks or apply or why is not None else lite_registry()
        known = None if lite is not None else _registry(bool(tasks))
        since = _settings.gc_duration(_settings.GC_KEEP_SINCE)
        roots = GcRoots(
            keep_last=keep_last if keep_last is not None else _settings.gc_keep_last(),
            keep_since=duration(keep_since, "--keep-since") if keep_since else since,
            tasks=tuple(task_id(t, known) for t in tasks or ()),
        )
        configured = _settings.gc_duration(_settings.GC_GRACE)
        seconds = duration(grace, "--grace") if grace else configured
        kept_for = DEFAULT_GRACE if seconds is None else seconds
        plan = mark(store(root), lite or known, roots, grace=kept_for)
        if why is not None:
            _explain(plan, why, known)
            return
        result = sweep(plan, known, apply=apply)
        if as_json:
            print_json(_as_json(plan, result))
        else:
            _print(plan, result)


def _registry(named: bool) -> Registry | None:
    """The registry, which must exist unless tasks are `named` (then None if it does not)."""
    from stardag.registry._existing import exists

    return registry() if exists() or not named else None


def _explain(plan: GcPlan, key: str, known: Any) -> None:
    from stardag.maintenance._resolve import is_digest

    blobs = {*plan.live_blobs, *plan.recent_blobs, *(c.key for c in plan.blobs)}
    if not (is_digest(key) and key in blobs):
        key = task_id(key, known)
    for line in plan.why(key):
        console().print(line, markup=False)


def _as_json(plan: GcPlan, result: GcResult) -> dict[str, Any]:
    by_family = {f: {"count": n, "bytes": b} for f, (n, b) in result.by_family().items()}
    return {
        "store": plan.store.url,
        "dry_run": result.dry_run,
        "grace_seconds": plan.grace,
        "deleted": {
            "records": [c.key for c in result.deleted if c.kind == "record"],
            "blobs": [c.key for c in result.deleted if c.kind == "blob"],
            "bytes": result.freed,
            "by_family": by_family,
        },
        "kept": plan.kept_by_reason(),
        "kept_on_recheck": [c.key for c in result.kept_on_recheck],
    }


def _print(plan: GcPlan, result: GcResult) -> None:
    from rich.table import Table

    out = console()
    verb = "would delete" if result.dry_run else "deleted"
    out.print(
        f"gc of {plan.store.url}: {verb} {result.count('record')} records and "
        f"{result.count('blob')} blobs, {size(result.freed)}"
    )
    if result.deleted:
        table = Table(box=None, title=verb, title_justify="left")
        for column in ("task family", "records+blobs", "bytes"):
            table.add_column(column)
        for family, (count, nbytes) in result.by_family().items():
            table.add_row(family, str(count), size(nbytes))
        out.print(table)
    kept = plan.kept_by_reason()
    if kept:
        table = Table(box=None, title="kept", title_justify="left")
        table.add_column("reason")
        table.add_column("records")
        for reason, count in sorted(kept.items()):
            table.add_row(reason, str(count))
        out.print(table)
    if result.kept_on_recheck:
        out.print(f"kept {len(result.kept_on_recheck)} used since the mark (checked again)")
    if result.dry_run and result.deleted:
        out.print("a dry run: nothing was deleted; run again with --apply to delete")
