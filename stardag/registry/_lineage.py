"""`lineage`: one recursive SQL query from the start tasks through the edges.

The query walks the task ids reachable upstream (task -> dependency),
downstream (dependency -> task) or both, to an optional depth, and returns in
one result every reached task with its newest output and every edge among them
it crossed: no query per node. Without a depth limit the walk's `UNION` keeps
each task id once, so a 10,000-task DAG is one pass over its edges, and each
reached task costs one lookup of its row, its newest output and that output's run.
The rows become nodes and edges without SQLAlchemy's per-row objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, text

from stardag.registry._graph import LineageGraph, LineageNode, assemble
from stardag.registry._info import when

Direction = Literal["up", "down", "both"]

_STEP = {
    # the next task id, and how the edge joins the walk so far (`w`)
    "up": ("e.dep_id", "e.task_id = w.id"),
    "down": ("e.task_id", "e.dep_id = w.id"),
}
_FROM = {"up": "e.task_id", "down": "e.dep_id"}  # an edge belongs to a walk by this end

_STARTS = (
    "starts(id) AS (SELECT id FROM tasks WHERE id IN :starts"
    " UNION SELECT dep_id FROM edges WHERE dep_id IN :starts)"
)

# The newest output of task `t`: SQLite finds it by one index step to its rowid;
# PostgreSQL by a lateral subquery on the same (task_id, created) index.
_NEWEST = {
    "sqlite": (
        "LEFT JOIN outputs o ON o.rowid = (SELECT o2.rowid FROM outputs o2"
        " WHERE o2.task_id = t.id ORDER BY o2.created DESC LIMIT 1)"
    ),
    "other": (
        "LEFT JOIN LATERAL (SELECT * FROM outputs o2 WHERE o2.task_id = t.id"
        " ORDER BY o2.created DESC LIMIT 1) o ON TRUE"
    ),
}

_NODES = """
SELECT 'node' AS row_kind, t.id AS a, t.namespace AS b, t.name AS c, t.version AS d,
       t.spec AS e, t.module AS f, t.qualname AS g,
       COALESCE(r.fingerprint, t.fingerprint) AS h,
       o.digest AS i, o.serializer AS j, o.size_raw AS k, o.size_stored AS l,
       o.created AS m, o.build_id AS n
FROM reached x
JOIN tasks t ON t.id = x.id
{newest}
LEFT JOIN runs r ON r.build_id = o.build_id AND r.task_id = o.task_id
"""

_EDGES = """
SELECT 'edge', e.task_id, e.dep_id, e.kind, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL
FROM {source}
"""


def lineage_sql(direction: Direction, depth_limited: bool, dialect: str = "sqlite") -> str:
    """The one statement that answers a lineage question (in `dialect`'s SQL)."""
    ways = ["up", "down"] if direction == "both" else [direction]
    ctes = [_STARTS, *(_walk(way, depth_limited) for way in ways)]
    ctes.append("reached(id) AS (" + " UNION ".join(f"SELECT id FROM {w}" for w in ways) + ")")
    newest = _NEWEST["sqlite" if dialect == "sqlite" else "other"]
    edges = [_EDGES.format(source=_crossed(way, depth_limited)) for way in ways]
    return (
        "WITH RECURSIVE "
        + ",\n".join(ctes)
        + "\n"
        + _NODES.format(newest=newest)
        + "".join("UNION ALL" + e for e in edges)
    )


def _crossed(way: str, depth_limited: bool) -> str:
    """The edges a walk crossed: those leaving a task it reached short of its depth."""
    if depth_limited:  # a task may be reached at several depths: test membership
        return f"edges e WHERE {_FROM[way]} IN (SELECT id FROM {way} WHERE depth < :depth)"
    return f"{way} w JOIN edges e ON {_FROM[way]} = w.id"  # each task id once


# PostgreSQL guesses a recursive walk reaches hundreds of thousands of rows, so it
# JIT-compiles the statement (about 90 ms) and hash-joins each step against a scan
# of every edge (a chain 10,000 deep scans them 10,000 times). A walk touches few
# rows per step: index lookups (nested loops) are right for it, in this transaction.
_WALK_SETTINGS = ("jit = off", "enable_hashjoin = off", "enable_mergejoin = off")


def plan_for_walks(conn: Connection) -> None:
    """Plan this PostgreSQL transaction's statements for a walk: no JIT, nested loops."""
    for setting in _WALK_SETTINGS:
        conn.execute(text(f"SET LOCAL {setting}"))


def _walk(way: str, depth_limited: bool) -> str:
    step, join = _STEP[way]
    if depth_limited:
        columns, first, more = "id, depth", "id, 0", f"{step}, w.depth + 1"
        join += " AND w.depth < :depth"
    else:
        columns, first, more = "id", "id", step
    return (
        f"{way}({columns}) AS (SELECT {first} FROM starts "
        f"UNION SELECT {more} FROM edges e JOIN {way} w ON {join})"
    )


def lineage(
    conn: Connection, starts: Sequence[str], direction: Direction, depth: int | None
) -> LineageGraph:
    """The lineage graph around `starts` (task ids the registry knows)."""
    if direction not in ("up", "down", "both"):
        raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be None or at least 0, not {depth}")
    nodes, edges = _query(conn, starts, direction, None if depth is None else max(depth, 1))
    if depth == 0:
        nodes = {k: v for k, v in nodes.items() if k in starts}
        edges = []
    named = {*starts}
    for task_id, dep_id, _ in edges:
        named.add(task_id)
        named.add(dep_id)
    for task_id in named.difference(nodes):
        nodes[task_id] = LineageNode.unknown(task_id)
    return assemble(tuple(starts), direction, nodes, edges)


def _query(
    conn: Connection, starts: Sequence[str], direction: Direction, depth: int | None
) -> tuple[dict[str, LineageNode], list[tuple[str, str, str]]]:
    sql = text(lineage_sql(direction, depth is not None, conn.dialect.name))
    sql = sql.bindparams(bindparam("starts", expanding=True))
    params: dict[str, Any] = {"starts": list(starts)}
    if depth is not None:
        params["depth"] = depth
    if conn.dialect.name == "postgresql":
        plan_for_walks(conn)
    result = conn.execute(sql, params)
    # Plain DBAPI tuples: building a Row object per node and edge costs a 10,000-task
    # lineage a fifth of its time, and every column here is a plain str, float or int.
    rows = result.cursor.fetchall() if result.cursor is not None else result.fetchall()
    result.close()
    nodes: dict[str, LineageNode] = {}
    edges: list[tuple[str, str, str]] = []
    make = LineageNode.from_row
    for row in rows:
        if row[0] == "node":
            if row[1] not in nodes:
                nodes[row[1]] = make(row[1:13], when(row[13]), row[14])
        else:
            edges.append((row[1], row[2], row[3]))
    return nodes, edges
