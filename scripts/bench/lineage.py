"""Lineage at scale: `sd.registry.lineage` of 10,000- and 100,000-node DAGs, in one run.

    python3 scripts/bench/lineage.py [--sizes 10000,100000] [--reps 5] [--no-postgres]

Fills a fresh registry (SQLite in a temp dir; PostgreSQL on a throwaway server on
127.0.0.1, as the tests start it) with the rows a build of a binary reduction
tree of about N tasks records: one task row per task with its canonical spec, a
static edge per dependency, one build, one run and one output per task. The rows
are written straight through SQLAlchemy Core (a real build of 100,000 tasks takes
minutes here and records the same rows; `registry.py` times the real build).
Then it times, median of `--reps`: the lineage up from the root (every node; a
graph reads its nodes' specs and outputs on first use), the same with every node
read, down from a leaf (its path to the root), the recursive statement alone that
walks every edge in one query (lineage walks level by level and uses it only for a
long narrow stretch; rows fetched and dropped, no nodes built), the recursive walk
alone (the task keys reached and nothing else), and rendering
the 10,000-node graph as text, Mermaid and DOT.

Goals (issues 13 and 16): up-lineage of 10,000 nodes under 50 ms on SQLite and
under 100 ms on PostgreSQL; of 100,000 nodes under 500 ms on SQLite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import stardag as sd  # noqa: E402
from stardag._hashing import digest_bytes  # noqa: E402


def tree_rows(n: int, build_id: str) -> tuple[str, str, dict[str, list[dict[str, Any]]]]:
    """Rows of a binary reduction tree of about n tasks: its root id, a leaf id, the rows."""
    now = time.time()
    tasks: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []

    def add(name: str, params: dict[str, Any], deps: list[str]) -> str:
        spec = {"namespace": "", "name": name, "version": "", "params": params}
        text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
        task_id = digest_bytes(text.encode())
        tasks.append(
            dict(
                id=task_id,
                namespace="",
                name=name,
                version="",
                spec=text,
                module="bench",
                qualname=name,
                fingerprint="f" * 64,
                first_seen=now,
            )
        )
        edges.extend(dict(task_id=task_id, dep_id=d, kind="static") for d in deps)
        digest = digest_bytes(task_id.encode())
        runs.append(
            dict(
                build_id=build_id,
                task_id=task_id,
                outcome="computed",
                started=now,
                ended=now,
                duration=0.0,
                error_type=None,
                error_message=None,
                traceback=None,
                digest=digest,
                size_raw=8,
                fingerprint="f" * 64,
            )
        )
        outputs.append(
            dict(
                task_id=task_id,
                digest=digest,
                serializer="json",
                size_raw=8,
                size_stored=17,
                created=now,
                build_id=build_id,
                store="file:///bench",
                last_used=now,
            )
        )
        return task_id

    level = [add("leaf", {"i": k}, []) for k in range((n + 1) // 2)]
    leaf = level[0]
    while len(level) > 1:
        pairs = [
            add(
                "add",
                {"a": {"$task": level[j]}, "b": {"$task": level[j + 1]}},
                [level[j], level[j + 1]],
            )
            for j in range(0, len(level) - 1, 2)
        ]
        level = pairs + level[len(level) - len(level) % 2 :]
    return level[0], leaf, {"tasks": tasks, "edges": edges, "runs": runs, "outputs": outputs}


def fill(registry: Any, n: int) -> tuple[str, str]:
    """Write a tree of about n tasks into `registry`; its root and one leaf."""
    from sqlalchemy import insert

    from stardag.registry import _models

    build_id = "b" * 32
    root, leaf, rows = tree_rows(n, build_id)
    build = dict(
        id=build_id,
        started=time.time(),
        ended=time.time(),
        status="succeeded",
        roots=json.dumps([root]),
        host="bench",
        username="bench",
        pid=1,
        argv="[]",
        cwd="/",
        python_version="3",
        platform="bench",
        stardag_version=sd.__version__,
    )
    tables = {
        "tasks": _models.TaskRow,
        "edges": _models.EdgeRow,
        "runs": _models.RunRow,
        "outputs": _models.OutputRow,
    }
    with registry.engine.begin() as conn:
        conn.execute(insert(_models.BuildRow.__table__), [build])
        for name, model in tables.items():
            conn.execute(insert(model.__table__), rows[name])
    return root, leaf


CPU: dict[str, float] = {}  # the median CPU seconds of this process, per timed label


def timed(label: str, fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """Median wall seconds of `reps` calls of `fn` (CPU ones go to `CPU[label]`), its result."""
    times, cpus, result = [], [], None
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    CPU[label] = statistics.median(cpus)
    return statistics.median(times), result


def query_only(registry: Any, root: str) -> int:
    """The up-lineage walk's statement alone: executed, every edge fetched, nothing built."""
    from sqlalchemy import bindparam, text

    from stardag.registry._lineage import lineage_sql, plan_for_walks

    with registry.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            plan_for_walks(conn)
        sql = text(lineage_sql("up", False, conn.dialect.name))
        sql = sql.bindparams(bindparam("starts", expanding=True))
        return len(conn.execute(sql, {"starts": [root]}).fetchall())


def walk_only(registry: Any, root: str) -> int:
    """The recursive walk alone: the task keys upstream of `root`, fetched and dropped."""
    from sqlalchemy import text

    from stardag.registry._lineage import plan_for_walks

    walk = (
        "WITH RECURSIVE up(k) AS (SELECT key FROM task_keys WHERE id = :root"
        " UNION SELECT l.dep_key FROM links l JOIN up w ON l.task_key = w.k) SELECT k FROM up"
    )
    with registry.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            plan_for_walks(conn)
        return len(conn.execute(text(walk), {"root": root}).fetchall())


def measure(label: str, url: str, n: int, reps: int) -> dict[str, Any]:
    """Fill a registry at `url` with a tree of about n tasks and time its lineage."""
    registry = sd.registry.open(url)
    try:
        root, leaf = fill(registry, n)
        out: dict[str, Any] = {"backend": label, "n": n}
        lineage = sd.registry.lineage
        out["up_s"], graph = timed("up", lambda: lineage(root, registry=registry), reps)
        out["nodes"] = len(graph)
        out["whole_s"], _ = timed("whole", lambda: lineage(root, registry=registry).nodes, reps)
        out["query_s"], _ = timed("query", lambda: query_only(registry, root), reps)
        out["walk_s"], _ = timed("walk", lambda: walk_only(registry, root), reps)
        out["down_s"], down = timed("down", lambda: lineage(leaf, "down", registry=registry), reps)
        out["down_nodes"] = len(down)
        if n <= 20_000:
            out["render_s"], _ = timed(
                "render", lambda: (graph.to_text(), graph.to_mermaid(), graph.to_dot()), reps
            )
        out |= {f"{k}_cpu_s": v for k, v in CPU.items()}
        return out
    finally:
        registry.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    a = parser.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    server = None
    if not a.no_postgres:
        sys.path.insert(0, str(REPO / "tests" / "support"))
        from postgres import PostgresServer

        server = PostgresServer()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="stardag-lineage-") as home:
            for n in sizes:
                url = f"sqlite:///{os.path.join(home, f'r{n}.db')}"
                results.append(measure("SQLite", url, n, a.reps))
                if server is not None and n <= 20_000:
                    results.append(measure("PostgreSQL", server.fresh_url(), n, a.reps))
    finally:
        if server is not None:
            server.destroy()
    print(f"lineage, median of {a.reps}; load average {os.getloadavg()[0]:.2f}")
    print("  (CPU: this process only; PostgreSQL's own work is in its server's processes)")
    for r in results:
        goal = {("SQLite", 10_000): 0.05, ("SQLite", 100_000): 0.5, ("PostgreSQL", 10_000): 0.1}
        g = goal.get((r["backend"], r["n"] // 1000 * 1000 if r["n"] < 20_000 else r["n"]))
        line = (
            f"  {r['backend']:<10} {r['nodes']:>7} nodes: up {r['up_s'] * 1e3:7.1f} ms"
            f" ({r['up_cpu_s'] * 1e3:6.1f} ms CPU here)"
            f" with every node read {r['whole_s'] * 1e3:7.1f} ms"
            f" statement alone {r['query_s'] * 1e3:6.1f} ms ({r['up_s'] / r['query_s']:.1f}x)"
            f" walk alone {r['walk_s'] * 1e3:6.1f} ms ({r['up_s'] / r['walk_s']:.1f}x)"
            f"  down {r['down_s'] * 1e3:6.1f} ms ({r['down_nodes']} nodes)"
        )
        if "render_s" in r:
            line += f"  render text+mermaid+dot {r['render_s'] * 1e3:6.1f} ms"
        if g is not None:
            verdict = "met" if r["up_s"] < g else "NOT met"
            line += f"\n{'':13}goal: up < {g * 1e3:.0f} ms, {verdict}"
            line += f" (the walk alone takes {r['walk_s'] / g:.0%} of the goal)"
        print(line)


if __name__ == "__main__":
    main()
