"""`lineage`: one recursive SQL walk from the start tasks, then one query for the nodes.

The walk follows the tasks reachable upstream (task -> dependency), downstream
(dependency -> task) or both, to an optional depth, over `links` (the edges by
small integer keys, kept in step with `edges` by the database's triggers), and
returns in one result every edge it crossed, as task ids: no query per node.
Without a depth limit the walk's `UNION` keeps each task key once, so a
10,000-task DAG is one pass over its edges. The graph's task ids are the starts
and the ends of those edges; their nodes (each task's row, its newest output and
that output's run) come from a second statement over all of them at once, run
when a caller first needs a node: counting a lineage or walking its edges reads
no spec, output or run.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, text

from stardag.registry._graph import LineageGraph, LineageNode, lazy
from stardag.registry._info import when

Direction = Literal["up", "down", "both"]

# The walk goes over `links`, the edges by their ends' small integer `task_keys`:
# keeping 10,000 integers unique and looking them up costs about half what 10,000
# ids of 64 hex digits do. Only the edges it crossed are turned back into ids.
_STEP = {
    # the next task key, and how the link joins the walk so far (`w`)
    "up": ("l.dep_key", "l.task_key = w.k"),
    "down": ("l.task_key", "l.dep_key = w.k"),
}
_FROM = {"up": "l.task_key", "down": "l.dep_key"}  # a link belongs to a walk by this end

# A start no edge names has no key: it walks nowhere, and is a node all the same.
_STARTS = "starts(k) AS (SELECT key FROM task_keys WHERE id IN :starts)"

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
SELECT t.id, t.namespace, t.name, t.version, t.spec, t.module, t.qualname,
       COALESCE(r.fingerprint, t.fingerprint),
       o.digest, o.serializer, o.size_raw, o.size_stored, o.created, o.build_id
FROM {ids}
JOIN tasks t ON t.id = j.id
{newest}
LEFT JOIN runs r ON r.build_id = o.build_id AND r.task_id = o.task_id
"""

# The task ids a node query asks for, bound as one parameter: SQLite reads a JSON
# array (CROSS JOIN: loop over the ids, look each up), PostgreSQL an array.
_IDS = {
    "sqlite": "(SELECT value AS id FROM json_each(:ids)) j CROSS",
    "other": "unnest(CAST(:ids AS VARCHAR[])) AS j(id)",
}

_IDS_OF_LINKS = "JOIN task_keys a ON a.key = l.task_key JOIN task_keys b ON b.key = l.dep_key"
_EDGES = "SELECT a.id, b.id, l.kind FROM {source}"


def lineage_sql(direction: Direction, depth_limited: bool, dialect: str = "sqlite") -> str:
    """The walk that answers a lineage question: every edge it crosses (task, dep, kind).

    The same SQL on every dialect (`dialect` is kept for callers that pass it).
    """
    ways = ["up", "down"] if direction == "both" else [direction]
    ctes = [_STARTS, *(_walk(way, depth_limited) for way in ways)]
    edges = [_EDGES.format(source=_crossed(way, depth_limited)) for way in ways]
    return "WITH RECURSIVE " + ",\n".join(ctes) + "\n" + "\nUNION ALL\n".join(edges)


def nodes_sql(dialect: str = "sqlite") -> str:
    """The statement that reads the nodes of the task ids bound as `:ids`."""
    kind = "sqlite" if dialect == "sqlite" else "other"
    return _NODES.format(ids=_IDS[kind], newest=_NEWEST[kind])


def _crossed(way: str, depth_limited: bool) -> str:
    """The links a walk crossed, with their ids: those leaving a task it reached short of
    its depth."""
    if depth_limited:  # a task may be reached at several depths: test membership
        reached = f"(SELECT k FROM {way} WHERE depth < :depth)"
        return f"links l {_IDS_OF_LINKS} WHERE {_FROM[way]} IN {reached}"
    return f"{way} w JOIN links l ON {_FROM[way]} = w.k {_IDS_OF_LINKS}"  # each key once


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
        columns, first, more = "k, depth", "k, 0", f"{step}, w.depth + 1"
        join += " AND w.depth < :depth"
    else:
        columns, first, more = "k", "k", step
    return (
        f"{way}({columns}) AS (SELECT {first} FROM starts "
        f"UNION SELECT {more} FROM links l JOIN {way} w ON {join})"
    )


Edge = tuple[str, str, str]


def lineage(
    conn: Connection, starts: Sequence[str], direction: Direction, depth: int | None
) -> LineageGraph:
    """The lineage graph around `starts` (task ids the registry knows), nodes read now."""
    ids, edges = walk(conn, starts, direction, depth)
    found = nodes(conn, ids)
    return lazy(tuple(starts), direction, found.keys(), edges, lambda: found)


def walk(
    conn: Connection, starts: Sequence[str], direction: Direction, depth: int | None
) -> tuple[set[str], list[Edge]]:
    """The task ids of the lineage around `starts` and the edges among them (with repeats).

    The ids are the starts and every task an edge names, known to the registry or not.
    """
    if direction not in ("up", "down", "both"):
        raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be None or at least 0, not {depth}")
    edges = _crossed_edges(conn, starts, direction, depth) if depth != 0 else []
    ids = set(starts)
    for task_id, dep_id, _ in edges:
        ids.add(task_id)
        ids.add(dep_id)
    return ids, edges


def _crossed_edges(
    conn: Connection, starts: Sequence[str], direction: Direction, depth: int | None
) -> list[Edge]:
    sql = text(lineage_sql(direction, depth is not None, conn.dialect.name))
    sql = sql.bindparams(bindparam("starts", expanding=True))
    params: dict[str, Any] = {"starts": list(starts)}
    if depth is not None:
        params["depth"] = depth
    if conn.dialect.name == "postgresql":
        plan_for_walks(conn)
    return list(_fetch(conn, sql, params))


def nodes(conn: Connection, ids: Collection[str]) -> dict[str, LineageNode]:
    """The node of each task id, in one statement; an id without a task row is unknown."""
    dialect = conn.dialect.name
    listed = list(ids)
    bound: Any = json.dumps(listed) if dialect == "sqlite" else listed
    found: dict[str, LineageNode] = {}
    make = LineageNode.from_row
    for row in _fetch(conn, text(nodes_sql(dialect)), {"ids": bound}):
        if row[0] not in found:  # outputs tied on `created` may repeat a task
            found[row[0]] = make(row[:12], when(row[12]), row[13])
    for task_id in listed:
        if task_id not in found:
            found[task_id] = LineageNode.unknown(task_id)
    return found


def _fetch(conn: Connection, sql: Any, params: dict[str, Any]) -> Sequence[Any]:
    """Every row as the driver's plain tuple: a Row object per row costs a big lineage
    a fifth of its time, and every column here is a plain str, float or int."""
    result = conn.execute(sql, params)
    rows = result.cursor.fetchall() if result.cursor is not None else result.fetchall()
    result.close()
    return rows
