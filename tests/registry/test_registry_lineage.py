"""Lineage graphs: naming tasks, rendering, order, and speed on a 10,000-task DAG."""

from __future__ import annotations

import datetime
import json
import random
import time
from dataclasses import asdict
from typing import Any

import pytest
from sqlalchemy import bindparam, event, text

import stardag as sd
from stardag._hashing import digest_bytes
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


def test_a_lineage_reads_its_nodes_in_one_statement_when_first_needed() -> None:
    """Counting a lineage, testing membership and walking its edges read no node; the
    first node asked for reads them all in one statement, and only once."""
    top = diamond()
    sd.build(top)
    registry = sd.registry.open()
    statements: list[str] = []

    def count(*args: Any) -> None:
        if args[2].lstrip().startswith(("SELECT", "WITH")):  # not BEGIN, SET LOCAL
            statements.append(args[2])

    event.listen(registry.engine, "before_cursor_execute", count)
    try:
        graph = sd.registry.lineage(top, registry=registry)
        statements.clear()
        assert len(graph) == 4 and top.a.id in graph and len(graph.edges) == 4
        assert {e.dep_id for e in graph.dependencies(top.id)} == {top.a.id, top.b.id}
        assert statements == []
        assert graph[top.id].params["a"] == {"$task": top.a.id}
        assert [n.label for n in graph][-1].endswith("pair") and graph.to_text()
        assert len(statements) == 1 and "RECURSIVE" not in statements[0]  # no second walk
    finally:
        event.remove(registry.engine, "before_cursor_execute", count)


def test_a_lineage_reads_its_nodes_after_its_registry_was_closed() -> None:
    """A closed registry reopens to read a graph's nodes (the graph outlives the call)."""
    top = diamond()
    sd.build(top)
    registry = sd.registry.open()
    graph = sd.registry.lineage(top, registry=registry)
    registry.close()
    assert graph[top.id].digest is not None and graph[top.a.id].known


@pytest.mark.sqlite_only
def test_an_in_memory_registry_lineage_reads_its_nodes_at_once() -> None:
    """An in-memory registry's data dies with its connection: its graphs read their nodes
    during the call, and still show them after the registry was closed."""
    registry = sd.registry.open("sqlite://")
    try:
        top = diamond()
        sd.build(top, registry=registry)
        graph = sd.registry.lineage(top, registry=registry)
    finally:
        registry.close()
    assert graph[top.id].digest is not None and len(list(graph)) == 4


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


def _random_registry(rng: random.Random) -> tuple[list[str], list[str]]:
    """Write a random DAG into the default registry: tasks (some with no output, one or
    two outputs, a run's own fingerprint or none), static and dynamic edges, and edges to
    ids without a task row. Its task ids and those row-less ids."""
    from sqlalchemy import insert

    from stardag.registry import _models

    ids = [digest_bytes(f"random-{k}".encode()) for k in range(60)]
    ghosts = [digest_bytes(f"ghost-{k}".encode()) for k in range(3)]
    builds = ["a" * 32, "b" * 32]
    tasks, edges, runs, outputs = [], set(), [], []
    for k, task_id in enumerate(ids):
        tasks.append(
            dict(
                id=task_id,
                namespace=rng.choice(["", "ns"]),
                name=rng.choice(["load", "fit", "score"]),
                version=rng.choice(["", "2"]),
                spec=json.dumps({"params": {"k": k, "x": rng.random()}}),
                module=rng.choice([None, "m"]),
                qualname=rng.choice([None, "q"]),
                fingerprint=rng.choice([None, f"{k:064x}"]),
                first_seen=1.0,
            )
        )
        for dep in rng.sample(ids[:k], min(k, rng.randint(0, 3))):
            edges.add((task_id, dep, rng.choice(["static", "dynamic"])))
        for n, build in enumerate(rng.sample([*builds, None], rng.randint(0, 2))):
            digest = digest_bytes(f"{task_id}{n}".encode())
            created = 1_700_000_000.0 + rng.randint(0, 10**6) + n / 8
            if build is not None:
                fingerprint = rng.choice([None, f"{n:064x}"])
                runs.append(_run(build, task_id, digest, created, fingerprint))
            outputs.append(
                dict(task_id=task_id, digest=digest, serializer="json", size_raw=n,
                     size_stored=n + 9, created=created, build_id=build, store=None,
                     last_used=created)
            )  # fmt: skip
    for ghost in ghosts:
        edges.add((rng.choice(ids), ghost, "static"))
    rows = {
        _models.BuildRow: [_build(b) for b in builds],
        _models.TaskRow: tasks,
        _models.EdgeRow: [dict(task_id=a, dep_id=b, kind=c) for a, b, c in sorted(edges)],
        _models.RunRow: runs,
        _models.OutputRow: outputs,
    }

    def write(conn: Any) -> None:
        for model, table_rows in rows.items():
            conn.execute(insert(model.__table__), table_rows)  # type: ignore[attr-defined]

    sd.registry.open().write(write)
    return ids, ghosts


def _build(build_id: str) -> dict[str, Any]:
    return dict(
        id=build_id, started=1.0, ended=2.0, status="succeeded", roots="[]", host="h",
        username="u", pid=1, argv="[]", cwd="/", python_version="3", platform="p",
        stardag_version="0",
    )  # fmt: skip


def _run(
    build_id: str, task_id: str, digest: str, created: float, fingerprint: str | None
) -> dict[str, Any]:
    return dict(
        build_id=build_id, task_id=task_id, outcome="computed", started=created,
        ended=created, duration=0.0, digest=digest, size_raw=1, fingerprint=fingerprint,
    )  # fmt: skip


def _reference(starts: list[str], direction: str, depth: int | None) -> LineageGraph:
    """The lineage, the slow and obvious way: a walk in Python, one query per task."""
    from sqlalchemy import select

    from stardag.registry._writes import EDGES, OUTPUTS, RUNS, TASKS

    def work(conn: Any) -> LineageGraph:
        crossed: set[tuple[str, str, str]] = set()
        reached = set(starts)
        for way in ["up", "down"] if direction == "both" else [direction]:
            near, far = (EDGES.c.task_id, EDGES.c.dep_id)[:: 1 if way == "up" else -1]
            frontier, seen = list(starts), set(starts)
            steps = 0
            while frontier and (depth is None or steps < max(depth, 1)):
                steps += 1
                step = []
                for task_id in frontier:
                    for edge in conn.execute(select(EDGES).where(near == task_id)):
                        crossed.add(tuple(edge))
                        step.append(edge._mapping[far.name])
                frontier = [t for t in dict.fromkeys(step) if t not in seen]
                seen.update(frontier)
            reached |= seen
        if depth == 0:
            crossed, reached = set(), set(starts)
        named = reached | {t for edge in crossed for t in edge[:2]}
        return LineageGraph(
            tuple(starts),
            direction,
            {t: _reference_node(conn, t, TASKS, OUTPUTS, RUNS) for t in named},
            [LineageEdge(*edge) for edge in crossed],
        )

    return sd.registry.open().read(work)


def _reference_node(conn: Any, task_id: str, tasks: Any, outputs: Any, runs: Any) -> LineageNode:
    from sqlalchemy import select

    task = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
    if task is None:
        return LineageNode.unknown(task_id)
    newest = conn.execute(
        select(outputs).where(outputs.c.task_id == task_id).order_by(outputs.c.created.desc())
    ).first()
    fingerprint = task.fingerprint
    if newest is not None and newest.build_id is not None:
        run = conn.execute(
            select(runs.c.fingerprint).where(
                runs.c.build_id == newest.build_id, runs.c.task_id == task_id
            )
        ).first()
        fingerprint = run.fingerprint or task.fingerprint
    return LineageNode(
        task.id, task.namespace, task.name, task.version, task.spec, task.module,
        task.qualname, fingerprint, newest and newest.digest, newest and newest.serializer,
        newest and newest.size_raw, newest and newest.size_stored,
        newest and datetime.datetime.fromtimestamp(newest.created, datetime.timezone.utc),
        newest and newest.build_id,
    )  # fmt: skip


def test_lineage_equals_a_walk_one_query_at_a_time_on_a_random_dag() -> None:
    """The one-statement lineage (each direction, depth, several roots, ids with no task
    row) has the nodes, fields, edges and order of a plain walk that asks per task."""
    rng = random.Random(16)
    ids, ghosts = _random_registry(rng)
    cases = 0
    for direction in ("up", "down", "both"):
        for depth in (None, 0, 1, 3):
            for starts in ([ids[-1]], [ids[30], ids[7]], [ghosts[0]], rng.sample(ids, 4)):
                got = sd.registry.lineage(starts, direction, depth)  # type: ignore[arg-type]
                want = _reference(starts, direction, depth)
                assert got.nodes == want.nodes and got.edges == want.edges
                assert [n.task_id for n in got] == [n.task_id for n in want]
                assert got.to_json() == want.to_json() and got.to_text() == want.to_text()
                cases += len(got) > 1 and bool(got.edges)
    assert cases > 20  # most cases are real graphs, not single nodes


@pytest.mark.parametrize(
    ("narrow", "narrow_levels"),
    [(10**9, 0), (0, 0), (10**9, 1), (10**9, 2)],
    ids=["all-in-sql", "all-by-levels", "sql-after-one-level", "sql-after-two-levels"],
)
def test_a_walk_by_levels_and_a_walk_in_sql_give_the_same_lineage(
    monkeypatch: pytest.MonkeyPatch, narrow: int, narrow_levels: int
) -> None:
    """However the walk splits between statements per level and the recursive statement
    (each direction, depth, several roots, ids with no task row), the lineage equals a
    plain walk that asks per task."""
    monkeypatch.setattr(_lineage, "NARROW", narrow)
    monkeypatch.setattr(_lineage, "NARROW_LEVELS", narrow_levels)
    rng = random.Random(13)
    ids, ghosts = _random_registry(rng)
    for direction in ("up", "down", "both"):
        for depth in (None, 1, 2, 4):
            for starts in ([ids[-1]], [ids[30], ids[7]], [ghosts[1]], rng.sample(ids, 3)):
                got = sd.registry.lineage(starts, direction, depth)  # type: ignore[arg-type]
                want = _reference(starts, direction, depth)
                assert got.nodes == want.nodes and got.edges == want.edges
                assert got.to_text() == want.to_text()


def test_a_deep_chain_with_diamonds_walks_on_in_sql_and_stays_whole() -> None:
    """A chain deeper than the narrow levels a walk takes one statement each (with a
    diamond every tenth link and a dependency shared by every fifth task) goes on in one
    recursive statement: upstream, downstream and to a depth past the switch, the
    lineage equals a plain walk that asks per task."""
    depth = 3 * _lineage.NARROW_LEVELS
    chain = [f"{i:064x}" for i in range(depth)]
    sides = [f"{i + depth:064x}" for i in range(depth)]
    shared = f"{2 * depth:064x}"
    edges = [(chain[i], chain[i + 1]) for i in range(depth - 1)]
    for i in range(0, depth - 1, 10):  # chain[i] -> side -> chain[i + 1], beside the link
        edges += [(chain[i], sides[i]), (sides[i], chain[i + 1])]
    edges += [(chain[i], shared) for i in range(0, depth, 5)]
    linked = [sides[i] for i in range(0, depth - 1, 10)]
    _insert_tasks([*chain, *linked, shared], edges)
    for start, direction, limit in [
        (chain[0], "up", None),
        (chain[0], "up", _lineage.NARROW_LEVELS + 7),
        (chain[-1], "down", None),
        (chain[depth // 2], "both", None),
        (shared, "down", 3),
    ]:
        got = sd.registry.lineage(start, direction, limit)  # type: ignore[arg-type]
        want = _reference([start], direction, limit)
        assert got.nodes == want.nodes and got.edges == want.edges, (direction, limit)
    registry = sd.registry.open()
    statements: list[str] = []
    listen = (registry.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    event.listen(*listen)
    try:
        assert len(sd.registry.lineage(chain[0], registry=registry)) == depth + len(linked) + 1
    finally:
        event.remove(*listen)
    assert sum("RECURSIVE" in s for s in statements) == 1  # the rest of the chain, in SQL
