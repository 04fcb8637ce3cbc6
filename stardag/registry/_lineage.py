"""`lineage`: one recursive SQL query from the start tasks through the edges.

The query walks upstream (task -> dependency), downstream (dependency -> task)
or both, to an optional depth, and returns in one result both the edges it
crossed and every reached task with its newest output: no query per node.
Without a depth limit each edge is visited once (`UNION` drops repeats), so a
10,000-task DAG is a single pass over its edges.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, text

from stardag.registry._graph import LineageEdge, LineageGraph, LineageNode
from stardag.registry._info import when

Direction = Literal["up", "down", "both"]

_STEP = {
    # (seed condition, recursive join) per direction; `w` is the walk so far
    "up": ("e.task_id IN :starts", "e.task_id = w.dep_id"),
    "down": ("e.dep_id IN :starts", "e.dep_id = w.task_id"),
}

_NODES = """
SELECT 'node' AS row_kind, t.id AS a, t.namespace AS b, t.name AS c, t.version AS d,
       t.spec AS e, t.module AS f, t.qualname AS g,
       COALESCE(r.fingerprint, t.fingerprint) AS h,
       o.digest AS i, o.serializer AS j, o.size_raw AS k, o.size_stored AS l,
       o.created AS m, o.build_id AS n
FROM tasks t
LEFT JOIN outputs o ON o.task_id = t.id AND o.created =
    (SELECT MAX(o2.created) FROM outputs o2 WHERE o2.task_id = t.id)
LEFT JOIN runs r ON r.build_id = o.build_id AND r.task_id = o.task_id
WHERE t.id IN (SELECT task_id FROM walked UNION SELECT dep_id FROM walked)
   OR t.id IN :starts
"""

_EDGES = """
SELECT 'edge', task_id, dep_id, kind, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL
FROM walked
"""


def lineage_sql(direction: Direction, depth_limited: bool) -> str:
    """The one statement that answers a lineage question."""
    ways = ["up", "down"] if direction == "both" else [direction]
    ctes = [_walk(way, depth_limited) for way in ways]
    walked = " UNION ".join(f"SELECT task_id, dep_id, kind FROM {way}" for way in ways)
    ctes.append(f"walked(task_id, dep_id, kind) AS ({walked})")
    return "WITH RECURSIVE " + ",\n".join(ctes) + "\n" + _NODES + "UNION ALL" + _EDGES


def _walk(way: str, depth_limited: bool) -> str:
    seed, join = _STEP[way]
    edge = "e.task_id, e.dep_id, e.kind"
    if depth_limited:
        columns, first, step = "task_id, dep_id, kind, depth", f"{edge}, 1", f"{edge}, w.depth + 1"
        join += " AND w.depth < :depth"
    else:
        columns, first, step = "task_id, dep_id, kind", edge, edge
    return (
        f"{way}({columns}) AS (SELECT {first} FROM edges e WHERE {seed} "
        f"UNION SELECT {step} FROM edges e JOIN {way} w ON {join})"
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
    for task_id in {*starts, *(e.task_id for e in edges), *(e.dep_id for e in edges)}:
        nodes.setdefault(task_id, LineageNode.unknown(task_id))
    return LineageGraph(tuple(starts), direction, nodes, edges)


def _query(
    conn: Connection, starts: Sequence[str], direction: Direction, depth: int | None
) -> tuple[dict[str, LineageNode], list[LineageEdge]]:
    sql = text(lineage_sql(direction, depth is not None))
    sql = sql.bindparams(bindparam("starts", expanding=True))
    params: dict[str, Any] = {"starts": list(starts)}
    if depth is not None:
        params["depth"] = depth
    nodes: dict[str, LineageNode] = {}
    edges: list[LineageEdge] = []
    for row in conn.execute(sql, params):
        if row[0] == "node":
            nodes.setdefault(row[1], _node(row))
        else:
            edges.append(LineageEdge(task_id=row[1], dep_id=row[2], kind=row[3]))
    return nodes, edges


def _node(row: Any) -> LineageNode:
    spec = json.loads(row[5]) if row[5] else {}
    return LineageNode(
        task_id=row[1],
        namespace=row[2],
        name=row[3],
        version=row[4],
        params=spec.get("params", {}),
        module=row[6],
        qualname=row[7],
        fingerprint=row[8],
        digest=row[9],
        serializer=row[10],
        size_raw=row[11],
        size_stored=row[12],
        created=when(row[13]),
        build_id=row[14],
    )
