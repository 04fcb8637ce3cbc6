"""Read-only questions the command line asks the registry, one small function each.

Every function takes an open connection (run them inside `Registry.read`) and
returns plain dicts of column values, newest first where order matters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, func, select

from stardag.registry import _models

TASKS: Table = _models.TaskRow.__table__  # type: ignore[attr-defined]
EDGES: Table = _models.EdgeRow.__table__  # type: ignore[attr-defined]
RUNS: Table = _models.RunRow.__table__  # type: ignore[attr-defined]
OUTPUTS: Table = _models.OutputRow.__table__  # type: ignore[attr-defined]
BUILDS: Table = _models.BuildRow.__table__  # type: ignore[attr-defined]

Row = dict[str, Any]


def _rows(conn: Connection, query: Any) -> list[Row]:
    return [dict(r._mapping) for r in conn.execute(query)]


def task(conn: Connection, task_id: str) -> Row | None:
    """The tasks row of a task id, with its spec parsed."""
    found = _rows(conn, select(TASKS).where(TASKS.c.id == task_id))
    if not found:
        return None
    row = found[0]
    row["spec"] = json.loads(row["spec"])
    return row


def tasks(conn: Connection, task_ids: Sequence[str]) -> dict[str, Row]:
    """Tasks rows (without specs) of many task ids."""
    found: dict[str, Row] = {}
    columns = [TASKS.c.id, TASKS.c.namespace, TASKS.c.name, TASKS.c.module, TASKS.c.fingerprint]
    ids = list(task_ids)
    for start in range(0, len(ids), 500):
        query = select(*columns).where(TASKS.c.id.in_(ids[start : start + 500]))
        found |= {r["id"]: r for r in _rows(conn, query)}
    return found


def runs(conn: Connection, task_id: str | None = None, limit: int = 50) -> list[Row]:
    """Runs of one task (or of every task), newest first, with each build's host and user."""
    query = (
        select(RUNS, TASKS.c.namespace, TASKS.c.name, BUILDS.c.host, BUILDS.c.username)
        .join(TASKS, TASKS.c.id == RUNS.c.task_id)
        .join(BUILDS, BUILDS.c.id == RUNS.c.build_id)
        .order_by(RUNS.c.started.desc())
        .limit(limit)
    )
    if task_id is not None:
        query = query.where(RUNS.c.task_id == task_id)
    return _rows(conn, query)


def outputs(conn: Connection, task_id: str) -> list[Row]:
    """Output rows of a task, newest first."""
    query = select(OUTPUTS).where(OUTPUTS.c.task_id == task_id).order_by(OUTPUTS.c.created.desc())
    return _rows(conn, query)


def producers(conn: Connection, digest: str) -> list[Row]:
    """Output rows of a blob digest: which tasks wrote these bytes, newest first."""
    query = select(OUTPUTS).where(OUTPUTS.c.digest == digest).order_by(OUTPUTS.c.created.desc())
    return _rows(conn, query)


def build(conn: Connection, build_id: str) -> Row | None:
    """One build row, with its roots and argv parsed."""
    found = _rows(conn, select(BUILDS).where(BUILDS.c.id == build_id))
    return _parsed_build(found[0]) if found else None


def builds(conn: Connection, limit: int = 20, prefix: str | None = None) -> list[Row]:
    """Builds newest first, each with counts of its runs by outcome."""
    query = select(BUILDS).order_by(BUILDS.c.started.desc()).limit(limit)
    if prefix:
        query = query.where(BUILDS.c.id.like(prefix + "%"))
    found = [_parsed_build(r) for r in _rows(conn, query)]
    counts = _outcomes(conn, [b["id"] for b in found])
    for row in found:
        row["outcomes"] = counts.get(row["id"], {})
    return found


def _parsed_build(row: Row) -> Row:
    row["roots"] = json.loads(row["roots"])
    row["argv"] = json.loads(row["argv"])
    return row


def _outcomes(conn: Connection, build_ids: list[str]) -> dict[str, dict[str, int]]:
    query = (
        select(RUNS.c.build_id, RUNS.c.outcome, func.count())
        .where(RUNS.c.build_id.in_(build_ids))
        .group_by(RUNS.c.build_id, RUNS.c.outcome)
    )
    found: dict[str, dict[str, int]] = {}
    for build_id, outcome, count in conn.execute(query):
        found.setdefault(build_id, {})[outcome] = count
    return found


def build_runs(conn: Connection, build_id: str) -> list[Row]:
    """Every run of one build, in the order they started."""
    query = (
        select(RUNS, TASKS.c.namespace, TASKS.c.name)
        .join(TASKS, TASKS.c.id == RUNS.c.task_id)
        .where(RUNS.c.build_id == build_id)
        .order_by(RUNS.c.started)
    )
    return _rows(conn, query)


def dependencies(conn: Connection, task_ids: Sequence[str]) -> list[Row]:
    """Edges from these tasks to their dependencies."""
    return _edges(conn, EDGES.c.task_id, task_ids)


def dependents(conn: Connection, task_ids: Sequence[str]) -> list[Row]:
    """Edges from the tasks that depend on these tasks."""
    return _edges(conn, EDGES.c.dep_id, task_ids)


def _edges(conn: Connection, column: Any, task_ids: Sequence[str]) -> list[Row]:
    found: list[Row] = []
    ids = list(task_ids)
    for start in range(0, len(ids), 500):
        query = select(EDGES).where(column.in_(ids[start : start + 500]))
        found.extend(_rows(conn, query))
    return found


def same_family(conn: Connection, namespace: str, name: str, limit: int = 50) -> list[Row]:
    """Tasks of one family (namespace and name) with their specs, newest first."""
    query = (
        select(TASKS)
        .where(TASKS.c.namespace == namespace, TASKS.c.name == name)
        .order_by(TASKS.c.first_seen.desc())
        .limit(limit)
    )
    found = _rows(conn, query)
    for row in found:
        row["spec"] = json.loads(row["spec"])
    return found
