"""Lineage graphs as text: an indented tree, Mermaid and Graphviz DOT.

In the tree a task reached again (a diamond) is printed once in full and then
as a reference, so a DAG prints in size linear in its edges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stardag.registry._graph import LineageGraph, LineageNode

SHORT = 12


def describe(node: LineageNode) -> str:
    """One line about a node: name, id, and its output if recorded."""
    line = f"{node.label} {node.task_id[:SHORT]}"
    if not node.known:
        return line + " (not in the registry)"
    if node.digest is not None:
        line += f" -> {node.digest[:SHORT]} ({node.size_raw} B)"
    if node.created is not None:
        line += f" at {node.created:%Y-%m-%d %H:%M:%S}Z"
    if node.build_id is not None:
        line += f" in build {node.build_id[:8]}"
    return line


def text(graph: LineageGraph) -> str:
    """The tree from each root; 'both' prints the upstream tree, then the downstream one."""
    ways = ["up", "down"] if graph.direction == "both" else [graph.direction]
    lines: list[str] = []
    for root in graph.roots:
        for way in ways:
            if len(ways) > 1:
                lines.append("upstream:" if way == "up" else "downstream (used by):")
            _tree(graph, root, way, lines)
    return "\n".join(lines)


def _tree(graph: LineageGraph, root: str, way: str, lines: list[str]) -> None:
    shown: set[str] = set()
    # An explicit stack, not recursion: lineage may be thousands of levels deep.
    stack: list[tuple[str, str, str, str]] = [(root, "", "", "")]
    while stack:
        task_id, prefix, branch, kind = stack.pop()
        node = graph.nodes[task_id]
        mark = " [dynamic]" if kind == "dynamic" else ""
        if task_id in shown:
            lines.append(f"{prefix}{branch}{node.label} {task_id[:SHORT]}{mark} (see above)")
            continue
        shown.add(task_id)
        lines.append(f"{prefix}{branch}{describe(node)}{mark}")
        edges = graph.dependencies(task_id) if way == "up" else graph.dependents(task_id)
        child_prefix = prefix + ("" if not branch else "    " if branch == "└── " else "│   ")
        children = [(e.dep_id if way == "up" else e.task_id, e.kind) for e in edges]
        children.sort(key=lambda c: (graph.nodes[c[0]].label, c[0]))
        for index in reversed(range(len(children))):
            child, child_kind = children[index]
            last = index == len(children) - 1
            stack.append((child, child_prefix, "└── " if last else "├── ", child_kind))


def mermaid(graph: LineageGraph) -> str:
    """A Mermaid flowchart; roots are highlighted, dynamic edges dotted."""
    lines = ["flowchart TD"]
    for node in graph:
        label = _escape_mermaid(f"{node.label}<br/>{node.task_id[:SHORT]}")
        lines.append(f'    {_mid(node.task_id)}["{label}"]')
    for edge in graph.edges:
        arrow = "-.->" if edge.kind == "dynamic" else "-->"
        lines.append(f"    {_mid(edge.dep_id)} {arrow} {_mid(edge.task_id)}")
    if graph.roots:
        lines.append("    classDef root stroke-width:3px")
        lines.append("    class " + ",".join(_mid(r) for r in graph.roots) + " root")
    return "\n".join(lines) + "\n"


def _mid(task_id: str) -> str:
    return "t" + task_id


def _escape_mermaid(label: str) -> str:
    return label.replace('"', "#quot;")


def dot(graph: LineageGraph) -> str:
    """A Graphviz digraph; roots are bold, dynamic edges dashed."""
    lines = ["digraph lineage {", "    rankdir=LR;", '    node [shape=box, fontname="monospace"];']
    roots = set(graph.roots)
    for node in graph:
        label = _escape_dot(f"{node.label}\n{node.task_id[:SHORT]}")
        style = ", style=bold" if node.task_id in roots else ""
        lines.append(f'    "{node.task_id}" [label="{label}"{style}];')
    for edge in graph.edges:
        style = " [style=dashed]" if edge.kind == "dynamic" else ""
        lines.append(f'    "{edge.dep_id}" -> "{edge.task_id}"{style};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _escape_dot(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
