"""`lineage`: a walk from the start tasks, level by level, then one query for the nodes.

The walk follows the tasks reachable upstream (task -> dependency), downstream
(dependency -> task) or both, to an optional depth, over `links` (the edges by
small integer keys, kept in step with `edges` by the database's triggers). Each
level is one statement: every link leaving the level's task keys, with the far
end's task id, so each edge is read once and each task id fetched once; the
walk keeps the keys it reached in Python. A long narrow stretch (a deep chain)
would cost a statement per task, so after `NARROW_LEVELS` narrow levels the rest
is one recursive SQL walk from the frontier, whose `UNION` keeps each task key
once. The graph's task ids are the starts and the ends of the edges crossed;
their nodes (each task's row, its newest output and that output's run) come
from a second statement over all of them at once, run when a caller first needs
a node: counting a lineage or walking its edges reads no spec, output or run.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, text

from stardag.registry._graph import LineageGraph, LineageNode, lazy
from stardag.registry._info import when

Direction = Literal["up", "down", "both"]
Way = Literal["up", "down"]

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
    ids = set(starts)
    if depth == 0:
        return ids, []
    edges = _crossed_edges(conn, starts, direction, depth, ids)
    return ids, edges


def _crossed_edges(
    conn: Connection, starts: Sequence[str], direction: Direction, depth: int | None, ids: set[str]
) -> list[Edge]:
    """The edges crossed walking `direction` from `starts`; `ids` gains both ends of each."""
    if conn.dialect.name == "postgresql":
        plan_for_walks(conn)
    keyed = dict(_fetch(conn, _START_KEYS, {"starts": list(starts)}))  # key -> task id
    edges: list[Edge] = []
    ways: list[Way] = ["up", "down"] if direction == "both" else [direction]
    for way in ways:
        names = dict(keyed)
        edges += _walk_levels(conn, names, way, depth, ids)
        ids.update(names.values())
    return edges


# A level narrower than this many task keys costs its statement more than its tasks
# cost the recursive walk; after `NARROW_LEVELS` of them in a row (a deep chain) the
# walk goes on in SQL. A tree widens within a few levels and never switches.
NARROW = 8
NARROW_LEVELS = 32

_START_KEYS = text("SELECT key, id FROM task_keys WHERE id IN :starts").bindparams(
    bindparam("starts", expanding=True)
)

# One level of the walk: (near key, far key, kind, far task id) of every link leaving
# the level's keys, which come as one text parameter: SQLite reads a JSON array,
# PostgreSQL an array literal, both `,`-joined. (psycopg would dump a list of ints
# element by element, slower than the statement; and PostgreSQL, given the keys as
# `IN (SELECT unnest ...)` in a statement psycopg has prepared, scans every link.)
_LEVEL = {
    "sqlite": (
        "SELECT l.{near}, l.{far}, l.kind, t.id FROM links l JOIN task_keys t ON t.key = l.{far}"
        " WHERE l.{near} IN (SELECT value FROM json_each(:keys))"
    ),
    "other": (
        "SELECT l.{near}, l.{far}, l.kind, t.id FROM unnest(CAST(:keys AS BIGINT[])) AS f(k)"
        " JOIN links l ON l.{near} = f.k JOIN task_keys t ON t.key = l.{far}"
    ),
}
_ENDS = {"up": ("task_key", "dep_key"), "down": ("dep_key", "task_key")}
_BRACKETS = {"sqlite": ("[", "]"), "other": ("{", "}")}
_LEVELS = {
    (way, kind): text(sql.format(near=near, far=far))
    for way, (near, far) in _ENDS.items()
    for kind, sql in _LEVEL.items()
}


def _walk_levels(
    conn: Connection, names: dict[int, str], way: Way, depth: int | None, ids: set[str]
) -> list[Edge]:
    """The edges crossed walking `way` from the task keys in `names` (key -> task id),
    which gains every key reached; `ids` gains the ends of edges crossed in SQL."""
    kind = "sqlite" if conn.dialect.name == "sqlite" else "other"
    sql, (opening, closing) = _LEVELS[way, kind], _BRACKETS[kind]
    step = _step_up if way == "up" else _step_down
    edges: list[Edge] = []
    frontier, level, narrow = list(names), 0, 0
    while frontier and (depth is None or level < depth):
        narrow = narrow + 1 if len(frontier) < NARROW else 0
        if narrow > NARROW_LEVELS:
            rest = None if depth is None else depth - level
            crossed = _walk_in_sql(conn, [names[k] for k in frontier], way, rest)
            for task_id, dep_id, _ in crossed:
                ids.add(task_id)
                ids.add(dep_id)
            return edges + crossed
        keys = opening + ",".join(map(str, frontier)) + closing
        frontier = step(_fetch(conn, sql, {"keys": keys}), names, edges)
        level += 1
    return edges


def _step_up(rows: Sequence[Any], names: dict[int, str], edges: list[Edge]) -> list[int]:
    """Add the edges of one level upstream; the keys it reached first (the next level)."""
    reached, add = [], edges.append
    for task_key, dep_key, kind, dep_id in rows:
        add((names[task_key], dep_id, kind))
        if dep_key not in names:
            names[dep_key] = dep_id
            reached.append(dep_key)
    return reached


def _step_down(rows: Sequence[Any], names: dict[int, str], edges: list[Edge]) -> list[int]:
    """Add the edges of one level downstream; the keys it reached first (the next level)."""
    reached, add = [], edges.append
    for dep_key, task_key, kind, task_id in rows:
        add((task_id, names[dep_key], kind))
        if task_key not in names:
            names[task_key] = task_id
            reached.append(task_key)
    return reached


def _walk_in_sql(conn: Connection, starts: list[str], way: Way, depth: int | None) -> list[Edge]:
    """The edges crossed walking `way` from `starts`, in one recursive statement (it may
    cross again edges the levels before it crossed: the graph keeps each edge once)."""
    sql = text(lineage_sql(way, depth is not None, conn.dialect.name))
    sql = sql.bindparams(bindparam("starts", expanding=True))
    params: dict[str, Any] = {"starts": starts}
    if depth is not None:
        params["depth"] = depth
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
