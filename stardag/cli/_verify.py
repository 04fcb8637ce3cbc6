"""`stardag verify`: check every byte of a store and its registry rows; `--repair` fixes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from stardag.cli._app import app
from stardag.cli._common import (
    EXIT_FAILED,
    JsonFlag,
    command,
    console,
    duration,
    fraction,
    lite_registry,
    print_json,
    registry,
    store,
)

if TYPE_CHECKING:
    from stardag.maintenance._verify import VerifyReport
    from stardag.registry import Registry


@app.command()
@command
def verify(
    sample: Annotated[
        str | None,
        typer.Option("--sample", metavar="SHARE", help="Check a random share, such as 10%."),
    ] = None,
    repair: Annotated[bool, typer.Option("--repair", help="Fix what can be fixed.")] = False,
    root: Annotated[
        str, typer.Option("--root", metavar="KEY", help="The root key of the store.")
    ] = "default",
    grace: Annotated[
        str,
        typer.Option("--grace", metavar="DURATION", help="Temp files younger than this are live."),
    ] = "1h",
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check every blob, action record and registry output row; exit 1 if any is wrong.

    Blobs must be whole zstd frames hashing to their names; records must parse, hash
    to their task ids and have their blobs; the registry's outputs must still be
    stored. --repair deletes damaged blobs and the records needing them (their tasks
    rebuild next time), invalid records and orphan temp files.
    """
    from stardag.maintenance._bulk import collector_paused
    from stardag.maintenance._verify import verify as check

    with collector_paused():  # a one-shot process: its 100,000-record report has no cycles
        # A plain SQLite registry is read through `sqlite3` (no SQLAlchemy to import);
        # a repair opens it whole.
        known = (None if repair else lite_registry()) or _registry()
        report = check(
            store(root),
            known,
            sample=fraction(sample) if sample else None,
            repair=repair,
            grace=duration(grace, "--grace"),
        )
        if as_json:
            print_json(_as_json(report))
        else:
            _print(report)
        if report.errors or (strict and report.warnings):
            raise typer.Exit(EXIT_FAILED)


def _registry() -> Registry | None:
    """The registry, if there is one."""
    from stardag.registry._existing import exists

    return registry() if exists() else None


def _as_json(report: VerifyReport) -> dict[str, Any]:
    return {
        "store": report.store,
        "sample": report.sample,
        "checked": {
            "blobs": report.blobs,
            "records": report.records,
            "outputs": report.outputs,
            "temp_files": report.temp_files,
        },
        "registry": report.registry,
        "ok": report.ok,
        "by_kind": report.by_kind(),
        "findings": [
            f.__dict__ | {"kind": f.kind.value, "warning": f.kind.is_warning}
            for f in report.findings
        ],
    }


def _print(report: VerifyReport) -> None:
    out = console()
    for finding in report.findings:
        colour = "yellow" if finding.kind.is_warning else "red"
        tasks = ", ".join(t[:12] for t in finding.task_ids) or "-"
        out.print(
            f"[{colour}]{finding.kind.value:<16}[/] {finding.path}  task {tasks}",
            highlight=False,
        )
        out.print(f"    {finding.detail}", markup=False)
        if finding.repaired:
            out.print(f"    [green]repaired[/green]: {finding.repaired}")
    sampled = f" (a {report.sample:.0%} sample)" if report.sample else ""
    registry = "" if report.registry else "; no registry, so no output rows"
    out.print(
        f"checked {report.blobs} blobs, {report.records} records, {report.outputs} output "
        f"rows and {report.temp_files} temp files in {report.store}{sampled}{registry}: "
        f"{len(report.errors)} errors, {len(report.warnings)} warnings"
    )


@app.command()
@command
def reindex(
    root: Annotated[
        str | None,
        typer.Option("--root", metavar="KEY", help="Only this root key (default: every one)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Rebuild the registry's task, edge and output rows from the stores' action records.

    Creates the registry if there is none (move a damaged one aside first). Builds
    and runs are not in the store, so they cannot be recovered.
    """
    import stardag.registry
    from stardag.cli._common import registry, stores

    known = registry(create=True)
    reports = [
        stardag.registry.reindex(each, registry=known)
        for each in ([store(root)] if root is not None else stores())
    ]
    if as_json:
        print_json(reports)
        return
    for report in reports:
        skipped = f", {report.invalid} unreadable records skipped" if report.invalid else ""
        console().print(
            f"reindexed {report.records} records from {report.store}{skipped}", highlight=False
        )
