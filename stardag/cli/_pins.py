"""`stardag pin`, `stardag unpin` and `stardag pins`: named gc roots."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from stardag.cli._app import app
from stardag.cli._common import (
    TASKS_HELP,
    JsonFlag,
    command,
    console,
    fail,
    iso,
    print_json,
    registry,
    task_ids,
    when,
)


@app.command()
@command
def pin(
    name: Annotated[str, typer.Argument(help="The pin's name (replaces a pin of that name).")],
    task: Annotated[str, typer.Argument(metavar="TASK", help=TASKS_HELP)],
) -> None:
    """Pin a task: it and its whole upstream survive every gc.

    A list of tasks is pinned as NAME.0, NAME.1, ... (`unpin NAME` removes them all).
    """
    from stardag.maintenance._resolve import is_import_reference
    from stardag.registry._pins import pin as add

    known = registry(create=is_import_reference(task))
    ids = task_ids(task, known)
    names = [name] if len(ids) == 1 else [f"{name}.{i}" for i in range(len(ids))]
    _remove_group(name, known, keep=names)
    for each, found in zip(names, ids, strict=True):
        made = add(each, found, known)
        console().print(f"pinned [bold]{made.name}[/bold] -> {made.task_id}")


@app.command()
@command
def unpin(name: str = typer.Argument(..., help="The pin to remove.")) -> None:
    """Remove a pin, or the pins NAME.0, NAME.1, ... of a pinned list.

    Their tasks become garbage unless something else keeps them.
    """
    removed = _remove_group(name, registry())
    if not removed:
        fail(f"no pin named {name!r} (stardag pins lists them)")
    for each in removed:
        console().print(f"unpinned [bold]{each.name}[/bold] (was {each.task_id})")


def _remove_group(name: str, known: Any, keep: Sequence[str] = ()) -> list[Any]:
    """Remove the pin NAME and the pins NAME.<n> of a pinned list, except those in `keep`."""
    from stardag.registry._pins import pins as every
    from stardag.registry._pins import unpin as remove

    group = re.compile(re.escape(name) + r"(\.\d+)?")
    removed = []
    for each in every(known):
        if group.fullmatch(each.name) and each.name not in keep:
            gone = remove(each.name, known)
            if gone is not None:
                removed.append(gone)
    return removed


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
