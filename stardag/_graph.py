"""Lineage graphs: a task's upstream (what it was made from) and downstream (what used it).

Edges come from the registry (static and dynamic dependencies as builds saw
them) and, upstream, also from action records, so a store built without a
registry still has lineage. Each node carries its family, and its output digest
when the store has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stardag._errors import StardagError
from stardag._store import Store

if TYPE_CHECKING:
    from stardag.registry import Registry

UP = "up"
DOWN = "down"


@dataclass
class Node:
    """One task in a lineage graph."""

    id: str
    namespace: str = ""
    name: str = "?"
    digest: str | None = None

    @property
    def family(self) -> str:
        """`namespace.name`, or the name alone."""
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


@dataclass
class Graph:
    """Nodes by task id and edges (task, dependency, kind), from a root, to a depth."""

    root: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[tuple[str, str, str]] = field(default_factory=set)

    def deps(self, task_id: str) -> list[str]:
        """Dependencies of a task in this graph, sorted by family then id."""
        return self._sorted({d for t, d, _ in self.edges if t == task_id})

    def users(self, task_id: str) -> list[str]:
        """Tasks in this graph that depend on a task."""
        return self._sorted({t for t, d, _ in self.edges if d == task_id})

    def _sorted(self, ids: set[str]) -> list[str]:
        return sorted(ids, key=lambda i: (self.nodes[i].family, i))

    def as_json(self) -> dict[str, Any]:
        """The graph as plain data."""
        return {
            "root": self.root,
            "nodes": [n.__dict__ | {"family": n.family} for n in self.nodes.values()],
            "edges": [{"task": t, "dependency": d, "kind": k} for t, d, k in sorted(self.edges)],
        }


def lineage(
    task_id: str,
    registry: Registry | None,
    stores: Sequence[Store],
    *,
    directions: Sequence[str] = (UP,),
    depth: int | None = None,
) -> Graph:
    """The lineage graph of a task: upstream, downstream or both, to `depth` levels."""
    walker = _Walker(registry, stores)
    graph = Graph(task_id)
    graph.nodes[task_id] = walker.node(task_id)
    for direction in directions:
        walker.walk(graph, direction, depth)
    walker.describe(graph)
    return graph


class _Walker:
    def __init__(self, registry: Registry | None, stores: Sequence[Store]) -> None:
        self.registry = registry
        self.stores = stores
        self.records: dict[str, Any] = {}

    def record(self, task_id: str) -> Any:
        if task_id not in self.records:
            self.records[task_id] = None
            for store in self.stores:
                try:
                    found = store.get_record(task_id)
                except StardagError:
                    continue
                if found is not None:
                    self.records[task_id] = found
                    break
        return self.records[task_id]

    def node(self, task_id: str) -> Node:
        record = self.record(task_id)
        if record is None:
            return Node(task_id)
        spec = record.spec
        return Node(
            task_id, str(spec.get("namespace", "")), str(spec.get("name", "?")), record.digest
        )

    def walk(self, graph: Graph, direction: str, depth: int | None) -> None:
        frontier, level, seen = [graph.root], 0, {graph.root}
        while frontier and (depth is None or level < depth):
            found = self.edges(frontier, direction)
            upcoming = []
            for task, dep, kind in found:
                graph.edges.add((task, dep, kind))
                other = dep if direction == UP else task
                if other not in seen:
                    seen.add(other)
                    upcoming.append(other)
                    graph.nodes.setdefault(other, self.node(other))
            frontier, level = upcoming, level + 1

    def edges(self, task_ids: list[str], direction: str) -> set[tuple[str, str, str]]:
        found: set[tuple[str, str, str]] = set()
        if self.registry is not None:
            from stardag.registry import _queries

            ask = _queries.dependencies if direction == UP else _queries.dependents
            rows = self.registry.read(lambda conn: ask(conn, task_ids))
            found |= {(r["task_id"], r["dep_id"], r["kind"]) for r in rows}
        if direction == UP:
            for task_id in task_ids:
                record = self.record(task_id)
                if record is not None:
                    found |= {(task_id, d, "static") for d in record.requires}
                    found |= {(task_id, d, "dynamic") for d in record.dynamic}
        return found

    def describe(self, graph: Graph) -> None:
        """Name nodes that have no record from the registry's task rows."""
        unnamed = [i for i, n in graph.nodes.items() if n.name == "?"]
        if not unnamed or self.registry is None:
            return
        from stardag.registry import _queries

        rows = self.registry.read(lambda conn: _queries.tasks(conn, unnamed))
        for task_id, row in rows.items():
            graph.nodes[task_id].namespace = row["namespace"]
            graph.nodes[task_id].name = row["name"]
