"""`stardag lineage TASK`: what a task was made from (and with --down, what used it)."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stardag.cli._app import app
from stardag.cli._common import TASK_HELP, command, console, print_json, registry, stores, task_id

if TYPE_CHECKING:
    from stardag._graph import Graph


class Format(str, enum.Enum):
    """How the graph is printed."""

    tree = "tree"
    mermaid = "mermaid"
    dot = "dot"
    json = "json"


@app.command()
@command
def lineage(
    task: Annotated[str, typer.Argument(metavar="TASK", help=TASK_HELP)],
    down: Annotated[
        bool, typer.Option("--down", help="What used it, instead of its upstream.")
    ] = False,
    both: Annotated[bool, typer.Option("--both", help="Upstream and downstream.")] = False,
    depth: Annotated[
        int | None, typer.Option("--depth", min=1, help="Levels to follow (default: all).")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.tree,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """A task's lineage graph, as a tree, Mermaid, Graphviz dot or JSON."""
    from stardag._graph import DOWN, UP, lineage

    known = registry()
    directions = (UP, DOWN) if both else (DOWN,) if down else (UP,)
    graph = lineage(task_id(task, known), known, stores(), directions=directions, depth=depth)
    if as_json or fmt is Format.json:
        print_json(graph.as_json())
    elif fmt is Format.mermaid:
        print(mermaid(graph))
    elif fmt is Format.dot:
        print(dot(graph))
    else:
        console().print(tree(graph, directions))


def _label(graph: Graph, key: str) -> str:
    return f"{graph.nodes[key].family} {key[:12]}"


def tree(graph: Graph, directions: tuple[str, ...]) -> Any:
    """A rich Tree; a task met twice is shown once, then referred to."""
    from rich.markup import escape
    from rich.tree import Tree

    root = Tree(f"[bold]{escape(_label(graph, graph.root))}[/bold]")
    for direction in directions:
        branch = (
            root
            if len(directions) == 1
            else root.add("[dim]upstream[/dim]" if direction == "up" else "[dim]downstream[/dim]")
        )
        step = graph.deps if direction == "up" else graph.users
        _grow(graph, branch, graph.root, step, {graph.root})
    return root


def _grow(graph: Graph, branch: Any, task_id: str, step: Any, seen: set[str]) -> None:
    from rich.markup import escape

    for other in step(task_id):
        label = escape(_label(graph, other))
        if other in seen:
            branch.add(f"{label} [dim](see above)[/dim]")
            continue
        seen.add(other)
        _grow(graph, branch.add(label), other, step, seen)


def mermaid(graph: Graph) -> str:
    """A Mermaid flowchart: each task points at what it was made from."""
    lines = ["graph TD"]
    for node in sorted(graph.nodes):
        lines.append(f'    t{node[:12]}["{_label(graph, node)}"]')
    for task, dep, kind in sorted(graph.edges):
        arrow = "-.->" if kind == "dynamic" else "-->"
        lines.append(f"    t{task[:12]} {arrow} t{dep[:12]}")
    return "\n".join(lines)


def dot(graph: Graph) -> str:
    """A Graphviz digraph: each task points at what it was made from."""
    lines = ["digraph lineage {", "    rankdir=BT;", "    node [shape=box];"]
    for node in sorted(graph.nodes):
        style = ", style=bold" if node == graph.root else ""
        lines.append(f'    "{node}" [label="{_label(graph, node)}"{style}];')
    for task, dep, kind in sorted(graph.edges):
        style = " [style=dashed]" if kind == "dynamic" else ""
        lines.append(f'    "{task}" -> "{dep}"{style};')
    lines.append("}")
    return "\n".join(lines)
