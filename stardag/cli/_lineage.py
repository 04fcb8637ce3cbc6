"""`stardag lineage TASK`: what a task was made from (and with --down, what used it)."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import typer

from stardag.cli._app import app
from stardag.cli._common import TASKS_HELP, command, print_json, registry, task_ids


class Format(str, enum.Enum):
    """How the graph is printed."""

    tree = "tree"
    mermaid = "mermaid"
    dot = "dot"
    json = "json"


@app.command()
@command
def lineage(
    task: Annotated[
        str,
        typer.Argument(
            metavar="TASK|DIGEST",
            help=TASKS_HELP + " Or an output digest (or prefix): the tasks that produced it.",
        ),
    ],
    down: Annotated[bool, typer.Option("--down", help="What used it, not its upstream.")] = False,
    both: Annotated[bool, typer.Option("--both", help="Upstream and downstream.")] = False,
    depth: Annotated[
        int | None, typer.Option("--depth", min=1, help="Levels to follow (default: all).")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.tree,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """A task's lineage graph, as a tree, Mermaid, Graphviz dot or JSON."""
    import stardag.registry
    from stardag.maintenance._resolve import is_import_reference

    known = registry()
    direction: Literal["up", "down", "both"] = "both" if both else "down" if down else "up"
    # An id, a prefix or a digest: the registry's own lookup, which knows outputs too.
    roots = task_ids(task, known) if is_import_reference(task) else [task]
    graph = stardag.registry.lineage(roots, direction, depth, registry=known)
    if as_json or fmt is Format.json:
        print_json(graph.to_dict())
    elif fmt is Format.mermaid:
        print(graph.to_mermaid())
    elif fmt is Format.dot:
        print(graph.to_dot())
    else:
        print(graph.to_text())
