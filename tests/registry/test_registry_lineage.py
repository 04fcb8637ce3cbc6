"""Lineage graphs: naming tasks, rendering, order, and speed on a 10,000-task DAG."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

import pytest
from sqlalchemy import bindparam, text

import stardag as sd
from stardag.registry import LineageEdge, LineageGraph, LineageNode, _lineage, _writes

sd.auto_namespace(__name__)


@sd.task
def source(n: int) -> list[int]:
    return list(range(n))


@sd.task
def head(xs: sd.Depends[list[int]]) -> int:
    return xs[0]


@sd.task
def tail(xs: sd.Depends[list[int]]) -> int:
    return xs[-1]


@sd.task
def pair(a: sd.Depends[int], b: sd.Depends[int]) -> list[int]:
    return [a, b]


class Expand(sd.Task[int]):
    """Yields one head task per element (dynamic dependencies)."""

    n: int

    def run(self) -> Any:
        yield [head(xs=source(n=k)) for k in range(1, self.n + 1)]
        return self.n


def diamond() -> Any:
    src = source(n=3)
    return pair(a=head(xs=src), b=tail(xs=src))


def test_the_text_tree_prints_a_shared_dependency_once() -> None:
    """In the tree, a task reached twice is printed in full once, then referenced."""
    top = diamond()
    sd.build(top)
    text = str(sd.registry.lineage(top))
    assert text.splitlines()[0].startswith(f"{__name__}.pair {top.id[:12]}")
    assert text.count("source") == 2
    assert text.count("(see above)") == 1


def test_both_directions_print_two_trees() -> None:
    """direction="both" prints the upstream tree and the downstream one."""
    top = diamond()
    sd.build(top)
    text = sd.registry.lineage(top.a, "both").to_text()
    assert "upstream:" in text and "downstream (used by):" in text


def test_mermaid_draws_data_flowing_into_each_task() -> None:
    """Mermaid has a node per task and an arrow from each dependency to its user."""
    top = diamond()
    sd.build(top)
    chart = sd.registry.lineage(top).to_mermaid()
    assert chart.startswith("flowchart TD")
    assert f"t{top.a.id} --> t{top.id}" in chart
    assert chart.count('["') == 4


def test_dot_dashes_dynamic_edges() -> None:
    """Graphviz DOT marks yielded dependencies with dashed edges."""
    task = Expand(n=2)
    sd.build(task)
    dot = sd.registry.lineage(task).to_dot()
    assert dot.startswith("digraph lineage {")
    assert f'"{head(xs=source(n=1)).id}" -> "{task.id}" [style=dashed];' in dot


def test_json_lists_nodes_in_topological_order() -> None:
    """The JSON form has every node, dependencies first, and every edge."""
    top = diamond()
    sd.build(top)
    data = json.loads(sd.registry.lineage(top).to_json())
    ids = [node["task_id"] for node in data["nodes"]]
    assert ids[0] == top.a.xs.id and ids[-1] == top.id
    assert len(data["edges"]) == 4
    assert data["nodes"][-1]["created"] is not None


def test_an_unknown_direction_is_an_error() -> None:
    """direction must be up, down or both."""
    top = diamond()
    sd.build(top)
    with pytest.raises(ValueError, match="direction"):
        sd.registry.lineage(top, "sideways")  # type: ignore[arg-type]  # on purpose


def test_a_shared_prefix_is_ambiguous() -> None:
    """A prefix that two recorded task ids share raises AmbiguousTaskIdError with both."""
    ids = ["ab" + "0" * 62, "ab" + "1" * 62]
    _insert_tasks(ids, edges=[])
    with pytest.raises(sd.AmbiguousTaskIdError) as caught:
        sd.registry.lineage("ab")
    assert caught.value.candidates == ids


def test_something_that_is_not_hex_is_a_reference_error() -> None:
    """A name that is no id, prefix or digest is a TaskReferenceError."""
    with pytest.raises(sd.TaskReferenceError):
        sd.registry.lineage("not-a-task")


def test_lineage_of_ten_thousand_tasks_is_whole() -> None:
    """Upstream of the root of a 10,000-task tree has every node and edge (speed: bench)."""
    ids = [f"{i:064x}" for i in range(10_000)]
    edges = [(ids[(i - 1) // 2], ids[i]) for i in range(1, len(ids))]  # a binary tree
    _insert_tasks(ids, edges)
    up = sd.registry.lineage(ids[0])
    down = sd.registry.lineage(ids[-1], "down")
    assert len(up) == 10_000 and len(up.edges) == 9_999
    assert len(down) == 14  # the path from a deepest leaf to the root
    assert len(list(up)) == 10_000


def test_a_fetched_graph_equals_one_made_by_the_public_constructors() -> None:
    """Nodes and edges filled straight from rows (the fast path) are the dataclasses a user
    would make: equal, hashing alike, edges sorted and unique, dependencies indexed."""
    top = Expand(n=2)
    sd.build(top)
    fetched = sd.registry.lineage(top, "both")
    remade = LineageGraph(
        fetched.roots,
        fetched.direction,
        {k: LineageNode(**asdict(v)) for k, v in fetched.nodes.items()},
        [LineageEdge(**asdict(e)) for e in reversed(fetched.edges + fetched.edges)],
    )
    assert fetched.nodes == remade.nodes
    assert {hash(n) for n in fetched.nodes.values()} == {hash(n) for n in remade.nodes.values()}
    assert fetched.edges == remade.edges and len(fetched.edges) == 4
    assert [n.task_id for n in fetched] == [n.task_id for n in remade]
    for task_id in fetched.nodes:
        assert fetched.dependencies(task_id) == remade.dependencies(task_id)
        assert fetched.dependents(task_id) == remade.dependents(task_id)
    assert fetched.to_json() == remade.to_json() and fetched.to_text() == remade.to_text()
    assert fetched[top.id].params == {"n": 2} and fetched[top.id].created is not None


@pytest.mark.postgresql_only
def test_postgresql_walks_a_deep_chain_by_index_lookups_without_jit() -> None:
    """PostgreSQL's guess for a recursive walk is huge: left alone it JIT-compiles the
    lineage statement and scans every edge at each step (a chain 2,000 deep: 2,000 scans).
    The lineage transaction plans it as index lookups, and the walk is whole."""
    ids = [f"{i:064x}" for i in range(2_000)]
    _insert_tasks(ids, [(ids[i], ids[i + 1]) for i in range(len(ids) - 1)])
    registry = sd.registry.open()

    def plan(conn: Any) -> str:
        conn.execute(text("ANALYZE"))
        _lineage.plan_for_walks(conn)
        sql = text("EXPLAIN " + _lineage.lineage_sql("up", False, "postgresql"))
        sql = sql.bindparams(bindparam("starts", expanding=True))
        return "\n".join(row[0] for row in conn.execute(sql, {"starts": [ids[0]]}))

    chosen = registry.read(plan)
    assert "Seq Scan on edges" not in chosen and "JIT" not in chosen, chosen
    assert "Index" in chosen
    graph = sd.registry.lineage(ids[0])
    assert len(graph) == 2_000 and len(graph.edges) == 1_999


def _insert_tasks(ids: list[str], edges: list[tuple[str, str]]) -> None:
    """Write task and edge rows straight into the default registry (no build)."""
    now = time.time()
    spec = {"key_schema": 1, "namespace": "synthetic", "name": "node", "version": ""}
    tasks = [_writes.spec_row(t, {**spec, "params": {"k": t}}, now) for t in ids]
    rows = [{"task_id": a, "dep_id": b, "kind": "static"} for a, b in edges]

    def write(conn: Any) -> None:
        _writes.put_tasks(conn, tasks)
        _writes.put_edges(conn, rows)

    sd.registry.open().write(write)
