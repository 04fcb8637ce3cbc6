"""`stardag pin`, `stardag unpin` and `stardag pins`: named gc roots."""

from __future__ import annotations

from typing import Annotated

import typer

from stardag.cli._app import app
from stardag.cli._common import (
    TASK_HELP,
    JsonFlag,
    command,
    console,
    fail,
    iso,
    print_json,
    registry,
    task_id,
    when,
)


@app.command()
@command
def pin(
    name: Annotated[str, typer.Argument(help="The pin's name (replaces a pin of that name).")],
    task: Annotated[str, typer.Argument(metavar="TASK", help=TASK_HELP)],
) -> None:
    """Pin a task: it and its whole upstream survive every gc."""
    from stardag.maintenance._resolve import is_import_reference
    from stardag.registry._pins import pin as add

    known = registry(create=is_import_reference(task))
    made = add(name, task_id(task, known), known)
    console().print(f"pinned [bold]{made.name}[/bold] -> {made.task_id}")


@app.command()
@command
def unpin(name: str = typer.Argument(..., help="The pin to remove.")) -> None:
    """Remove a pin (its task becomes garbage unless something else keeps it)."""
    from stardag.registry._pins import unpin as remove

    removed = remove(name, registry())
    if removed is None:
        fail(f"no pin named {name!r} (stardag pins lists them)")
    console().print(f"unpinned [bold]{removed.name}[/bold] (was {removed.task_id})")


@app.command()
@command
def pins(as_json: JsonFlag = False) -> None:
    """Every pin: its name, task and when it was made."""
    from stardag.registry._pins import pins as every

    found = every(registry())
    if as_json:
        print_json([p.__dict__ | {"created": iso(p.created)} for p in found])
        return
    if not found:
        console().print("no pins (stardag pin NAME TASK makes one)")
        return
    from rich.table import Table

    table = Table(box=None)
    for column in ("name", "task", "created", "by"):
        table.add_column(column)
    for each in found:
        table.add_row(each.name, each.task_id, when(each.created), each.username or "-")
    console().print(table)
