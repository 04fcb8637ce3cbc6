"""The lineage graph: nodes (tasks with their outputs) and edges (task -> dependency).

Iterating a graph yields its nodes in topological order, dependencies before
the tasks that use them, ties broken by name and id so the order is stable.
It renders as a text tree (`str(graph)`), Mermaid, Graphviz DOT and JSON; each
rendering names a task with the parameters that tell it apart from the others
(`_params.distinguishing`).
"""

from __future__ import annotations

import datetime
import functools
import heapq
import json
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from stardag.registry._params import distinguishing

SHORT = 12  # hex digits of an id shown in renderings


@dataclass(frozen=True)
class LineageNode:
    """A task in a lineage graph, with its newest recorded output."""

    task_id: str
    namespace: str
    name: str
    version: str
    spec_json: str  # the canonical spec the id hashes, as JSON text ("" if unknown)
    module: str | None
    qualname: str | None
    fingerprint: str | None  # of the code that produced the output (else as last seen)
    digest: str | None
    serializer: str | None
    size_raw: int | None
    size_stored: int | None
    created: datetime.datetime | None  # when the output was written
    build_id: str | None  # by which build; None if reindexed from a store
    known: bool = True  # False: only an edge names it (its task row is missing)

    @classmethod
    def from_row(
        cls, columns: Sequence[Any], created: datetime.datetime | None, build_id: str | None
    ) -> LineageNode:
        """A known node from its first twelve fields in order (task_id ... size_stored).

        Fills the instance's attributes in one step: a lineage of 100,000 tasks makes
        100,000 nodes, and the frozen `__init__` sets each of 15 fields by a call.
        """
        node = _new(cls)
        attrs = node.__dict__
        attrs.update(zip(_ROW_FIELDS, columns, strict=True))
        attrs["created"] = created
        attrs["build_id"] = build_id
        attrs["known"] = True
        return node

    @classmethod
    def unknown(cls, task_id: str) -> LineageNode:
        """A task id that only an edge names."""
        return cls(
            task_id, "", "?", "", "", None, None, None, None, None, None, None, None, None, False
        )

    @functools.cached_property
    def params(self) -> dict[str, Any]:
        """The parameters, canonically encoded: a dependency is `{"$task": <its id>}`."""
        # Parsed on first use: most nodes of a big graph are only counted or drawn.
        params: dict[str, Any] = (
            json.loads(self.spec_json).get("params", {}) if self.spec_json else {}
        )
        return params

    @property
    def label(self) -> str:
        """`namespace.name` (or just the name)."""
        return f"{self.namespace}.{self.name}" if self.namespace else self.name

    def to_dict(self) -> dict[str, Any]:
        """The node as JSON-able data."""
        data = asdict(self)
        del data["spec_json"]
        data["params"] = self.params
        data["created"] = self.created.isoformat() if self.created else None
        return data


_new = object.__new__
_ROW_FIELDS = (
    "task_id", "namespace", "name", "version", "spec_json", "module", "qualname",
    "fingerprint", "digest", "serializer", "size_raw", "size_stored",
)  # fmt: skip


@dataclass(frozen=True)
class LineageEdge:
    """`task_id` depends on `dep_id`; `kind` is "static" (requires) or "dynamic" (yielded)."""

    task_id: str
    dep_id: str
    kind: str


class LineageGraph:
    """The tasks around `roots`, upstream, downstream or both, and the edges among them.

    A graph from `sd.registry.lineage` knows its task ids and edges at once and
    reads its nodes (specs, code, newest outputs) from the registry in one query
    when first asked for them: counting, membership and walking the edges cost no
    node. Nodes read later show the registry as it is then.
    """

    def __init__(
        self,
        roots: tuple[str, ...],
        direction: str,
        nodes: dict[str, LineageNode],
        edges: list[LineageEdge],
    ) -> None:
        keys = {(e.task_id, e.dep_id, e.kind): e for e in edges}
        self.roots, self.direction = roots, direction
        self._nodes: dict[str, LineageNode] | None = nodes
        self._ids: Collection[str] = nodes.keys()
        self._load: Callable[[], dict[str, LineageNode]] | None = None
        self._edges: list[LineageEdge] | None = [keys[key] for key in sorted(keys)]
        self._pairs: list[tuple[str, str, str]] = []
        self._deps: dict[str, list[LineageEdge]] = {}
        self._users: dict[str, list[LineageEdge]] = {}
        self._indexed = False

    @property
    def nodes(self) -> dict[str, LineageNode]:
        """Every node by task id (read from the registry on first use)."""
        nodes = self._nodes
        if nodes is None:
            assert self._load is not None
            nodes = self._nodes = self._load()
        return nodes

    @property
    def edges(self) -> list[LineageEdge]:
        """Every edge once, sorted by (task_id, dep_id, kind)."""
        edges = self._edges
        if edges is None:
            edges = self._edges = [_edge(*pair) for pair in sorted(set(self._pairs))]
        return edges

    def __repr__(self) -> str:
        return (
            f"LineageGraph(roots={self.roots!r}, direction={self.direction!r}, "
            f"nodes={len(self)}, edges={len(self.edges)})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LineageGraph):
            return NotImplemented
        return (self.roots, self.direction, self.nodes, self.edges) == (
            other.roots,
            other.direction,
            other.nodes,
            other.edges,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    def _index(self) -> None:
        """Index the edges by either end, once, when a walk first needs it."""
        if self._indexed:
            return
        deps: dict[str, list[LineageEdge]] = {}
        users: dict[str, list[LineageEdge]] = {}
        for edge in self.edges:
            found = deps.get(edge.task_id)
            if found is None:
                deps[edge.task_id] = [edge]
            else:
                found.append(edge)
            found = users.get(edge.dep_id)
            if found is None:
                users[edge.dep_id] = [edge]
            else:
                found.append(edge)
        # Published whole: two threads that index at once build the same dicts.
        self._deps, self._users, self._indexed = deps, users, True

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids

    def __getitem__(self, task_id: str) -> LineageNode:
        return self.nodes[task_id]

    def __iter__(self) -> Iterator[LineageNode]:
        """Nodes in topological order: every dependency before the tasks that use it.

        Edges may come from a remote's records, which can form a cycle that honest task
        ids cannot; each node is still yielded once, the cycle cut at its first node.
        """
        self._index()
        nodes = self.nodes
        waiting = {task_id: len(self._deps.get(task_id, ())) for task_id in nodes}
        ready = [self._key(t) for t, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        while ready or waiting:
            if not ready:  # only cycles are left: start at the first of their nodes
                ready.append(min(self._key(t) for t in waiting))
            task_id = heapq.heappop(ready)[-1]
            if waiting.pop(task_id, None) is None:
                continue  # yielded already (a cut cycle also counts it down)
            yield nodes[task_id]
            for edge in self._users.get(task_id, ()):
                if edge.task_id in waiting:
                    waiting[edge.task_id] -= 1
                    if waiting[edge.task_id] == 0:
                        heapq.heappush(ready, self._key(edge.task_id))

    def _key(self, task_id: str) -> tuple[str, str, str]:
        node = self.nodes[task_id]
        return node.namespace, node.name, task_id

    def dependencies(self, task_id: str) -> list[LineageEdge]:
        """Edges from a task to what it depends on (within this graph)."""
        self._index()
        return list(self._deps.get(task_id, ()))

    def dependents(self, task_id: str) -> list[LineageEdge]:
        """Edges from the tasks that depend on a task (within this graph)."""
        self._index()
        return list(self._users.get(task_id, ()))

    def to_dict(self) -> dict[str, Any]:
        """The graph as JSON-able data: nodes in topological order, then edges."""
        return {
            "roots": list(self.roots),
            "direction": self.direction,
            "nodes": [node.to_dict() for node in self],
            "edges": [asdict(edge) for edge in self.edges],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The graph as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    def to_text(self) -> str:
        """A text tree from each root: upstream, downstream, or both."""
        return render_text(self)

    def to_mermaid(self) -> str:
        """A Mermaid flowchart (data flows from dependency to task)."""
        return render_mermaid(self)

    def to_dot(self) -> str:
        """A Graphviz DOT digraph (data flows from dependency to task)."""
        return render_dot(self)

    def __str__(self) -> str:
        return self.to_text()


def assemble(
    roots: tuple[str, ...],
    direction: str,
    nodes: dict[str, LineageNode],
    edges: list[tuple[str, str, str]],
) -> LineageGraph:
    """A graph from edges as (task_id, dep_id, kind) tuples, in any order, repeats allowed."""
    return lazy(roots, direction, nodes.keys(), edges, lambda: nodes)


def lazy(
    roots: tuple[str, ...],
    direction: str,
    ids: Collection[str],
    edges: list[tuple[str, str, str]],
    load: Callable[[], dict[str, LineageNode]],
) -> LineageGraph:
    """A graph of the task ids `ids` whose nodes `load` reads when first needed.

    Edges come as (task_id, dep_id, kind) tuples, in any order, repeats allowed:
    they sort and deduplicate in C when first asked for (dataclass instances would
    hash and compare field by field in Python), and only then become `LineageEdge`s.
    """
    graph = _new(LineageGraph)
    graph.roots, graph.direction = roots, direction
    graph._nodes, graph._ids, graph._load = None, ids, load
    graph._edges, graph._pairs = None, edges
    graph._deps, graph._users, graph._indexed = {}, {}, False
    return graph


def _edge(task_id: str, dep_id: str, kind: str) -> LineageEdge:
    """A `LineageEdge` without the frozen `__init__`'s call per field."""
    edge = _new(LineageEdge)
    edge.__dict__.update(task_id=task_id, dep_id=dep_id, kind=kind)
    return edge


# -- renderings: text tree, Mermaid, Graphviz DOT (labels escaped for each) -------------
def _label(node: LineageNode, name: str) -> str:
    """One line about a node: its name (with parameters), id, and its output if recorded."""
    line = f"{name} {node.task_id[:SHORT]}"
    if not node.known:
        return line + " (not in the registry)"
    if node.digest is not None:
        line += f" -> {node.digest[:SHORT]} ({node.size_raw} B)"
    if node.created is not None:
        line += f" at {node.created:%Y-%m-%d %H:%M:%S}Z"
    if node.build_id is not None:
        line += f" in build {node.build_id[:8]}"
    return line


def render_text(graph: LineageGraph) -> str:
    """The tree from each root; 'both' prints the upstream tree, then the downstream one."""
    ways = ["up", "down"] if graph.direction == "both" else [graph.direction]
    lines: list[str] = []
    names = _names(graph)
    for root in graph.roots:
        for way in ways:
            if len(ways) > 1:
                lines.append("upstream:" if way == "up" else "downstream (used by):")
            _tree(graph, root, way, lines, names)
    return "\n".join(lines)


def _names(graph: LineageGraph) -> dict[str, str]:
    nodes = graph.nodes.values()
    return distinguishing([(n.task_id, n.label, n.params) for n in nodes if n.known]) | {
        n.task_id: n.label for n in nodes if not n.known
    }


def _tree(
    graph: LineageGraph, root: str, way: str, lines: list[str], names: dict[str, str]
) -> None:
    shown: set[str] = set()
    nodes = graph.nodes
    # An explicit stack, not recursion: lineage may be thousands of levels deep.
    stack: list[tuple[str, str, str, str]] = [(root, "", "", "")]
    while stack:
        task_id, prefix, branch, kind = stack.pop()
        node = nodes[task_id]
        mark = " [dynamic]" if kind == "dynamic" else ""
        if task_id in shown:
            lines.append(f"{prefix}{branch}{names[task_id]} {task_id[:SHORT]}{mark} (see above)")
            continue
        shown.add(task_id)
        lines.append(f"{prefix}{branch}{_label(node, names[task_id])}{mark}")
        edges = graph.dependencies(task_id) if way == "up" else graph.dependents(task_id)
        child_prefix = prefix + ("" if not branch else "    " if branch == "└── " else "│   ")
        children = [(e.dep_id if way == "up" else e.task_id, e.kind) for e in edges]
        children.sort(key=lambda c: (nodes[c[0]].label, c[0]))
        for index in reversed(range(len(children))):
            child, child_kind = children[index]
            last = index == len(children) - 1
            stack.append((child, child_prefix, "└── " if last else "├── ", child_kind))


def render_mermaid(graph: LineageGraph) -> str:
    """A Mermaid flowchart; roots are highlighted, dynamic edges dotted."""
    lines = ["flowchart TD"]
    names = _names(graph)
    for node in graph:
        label = _escape_mermaid(f"{names[node.task_id]}<br/>{node.task_id[:SHORT]}")
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


def render_dot(graph: LineageGraph) -> str:
    """A Graphviz digraph; roots are bold, dynamic edges dashed."""
    lines = ["digraph lineage {", "    rankdir=LR;", '    node [shape=box, fontname="monospace"];']
    roots = set(graph.roots)
    names = _names(graph)
    for node in graph:
        label = _escape_dot(f"{names[node.task_id]}\n{node.task_id[:SHORT]}")
        style = ", style=bold" if node.task_id in roots else ""
        lines.append(f'    "{node.task_id}" [label="{label}"{style}];')
    for edge in graph.edges:
        style = " [style=dashed]" if edge.kind == "dynamic" else ""
        lines.append(f'    "{edge.dep_id}" -> "{edge.task_id}"{style};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _escape_dot(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
