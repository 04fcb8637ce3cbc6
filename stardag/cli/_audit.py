"""`stardag audit TASK`: re-run it in a scratch store; does it reproduce its output?"""

from __future__ import annotations

from typing import Annotated

import typer

from stardag.cli._app import app
from stardag.cli._common import (
    EXIT_FAILED,
    TASK_HELP,
    JsonFlag,
    command,
    console,
    print_json,
    registry,
    stores,
    task_id,
    verdict_json,
)


@app.command()
@command
def audit(
    task: Annotated[str, typer.Argument(metavar="TASK", help=TASK_HELP)],
    upstream: Annotated[
        bool, typer.Option("--upstream", help="Re-run its whole upstream too.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Re-run a task in a scratch store and compare digests; exit 1 unless reproduced.

    Each verdict (reproduced, or differs with both digests) is recorded in the
    registry; `stardag history TASK` shows it.
    """
    from stardag.maintenance._audit import audit as run_audit
    from stardag.maintenance._rebuild import rebuild
    from stardag.maintenance._resolve import is_import_reference, task_named

    known = registry()
    target = task_named(task) if is_import_reference(task) else None
    if target is None:
        target = rebuild(task_id(task, known), known, stores())
    report = run_audit(target, upstream=upstream, registry=known)
    if as_json:
        verdicts = [verdict_json(v) for v in report.verdicts]
        print_json({"task_id": report.root_id, "verdicts": verdicts})
    else:
        out = console()
        for verdict in report.verdicts:
            colour = "green" if verdict.verdict == "reproduced" else "red"
            line = f"[{colour}]{verdict.verdict:<10}[/] {verdict.task_id[:12]}"
            if verdict.verdict == "differs":
                line += f"  recorded {verdict.recorded_digest}  re-run {verdict.audit_digest}"
            elif verdict.error:
                line += f"  {verdict.error}"
            out.print(line, markup=True, highlight=False)
    if not report.reproduced:
        raise typer.Exit(EXIT_FAILED)
