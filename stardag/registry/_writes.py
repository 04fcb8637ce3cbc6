"""Batched, idempotent writes of registry rows (used by the recorder and by reindex).

Each function takes plain row dicts and one open write transaction: rows already
present are kept (edges, runs) or brought up to date (tasks take a newly seen
code fingerprint, outputs a newer writer), so a batch may be written twice safely.
SQLite gets multi-row statements (`_bulk`); other databases one executemany.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from stardag.registry import _bulk, _models
from stardag.registry._environment import Environment

# Row makers live in `_rowshape` (no SQLAlchemy); callers know them here too.
from stardag.registry._rowshape import edge_rows as edge_rows
from stardag.registry._rowshape import output_row as output_row
from stardag.registry._rowshape import parse_time as parse_time
from stardag.registry._rowshape import spec_row as spec_row

Row = dict[str, Any]

TASKS: Table = _models.TaskRow.__table__  # type: ignore[attr-defined]
EDGES: Table = _models.EdgeRow.__table__  # type: ignore[attr-defined]
OUTPUTS: Table = _models.OutputRow.__table__  # type: ignore[attr-defined]
RUNS: Table = _models.RunRow.__table__  # type: ignore[attr-defined]
BUILDS: Table = _models.BuildRow.__table__  # type: ignore[attr-defined]
ENVIRONMENTS: Table = _models.EnvironmentRow.__table__  # type: ignore[attr-defined]
LATER = OUTPUTS.alias("later")
BULK_SQLITE = True  # False sends SQLite the portable statements too (a test compares them)


def _bulk_sqlite(conn: Connection) -> bool:
    return BULK_SQLITE and conn.dialect.name == "sqlite"


def _greatest(conn: Connection) -> Any:
    """The larger of two values: `max(a, b)` in SQLite, `greatest(a, b)` elsewhere."""
    return func.max if conn.dialect.name == "sqlite" else func.greatest


def _insert(conn: Connection, table: Table) -> Any:
    """An INSERT that can say ON CONFLICT, in the connection's dialect."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# -- writes ------------------------------------------------------------------------------------
def put_tasks(conn: Connection, rows: Sequence[Row]) -> None:
    """Insert new task rows; known ones keep theirs, but take a newly seen code location."""
    if not rows:
        return
    if _bulk_sqlite(conn):
        _bulk.insert_many(conn, "tasks", rows, _bulk.TASKS)
        return
    stmt = _insert(conn, TASKS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={
            "module": stmt.excluded.module,
            "qualname": stmt.excluded.qualname,
            "fingerprint": stmt.excluded.fingerprint,
        },
        where=and_(
            stmt.excluded.fingerprint.is_not(None),
            TASKS.c.fingerprint.is_distinct_from(stmt.excluded.fingerprint),
        ),
    )
    conn.execute(stmt, list(rows))


def put_edges(conn: Connection, rows: Sequence[Row]) -> None:
    """Insert edges that are not yet recorded."""
    if rows and _bulk_sqlite(conn):
        _bulk.insert_many(conn, "edges", rows, _bulk.NOTHING)
    elif rows:
        conn.execute(_insert(conn, EDGES).on_conflict_do_nothing(), list(rows))


def put_outputs(conn: Connection, rows: Sequence[Row]) -> None:
    """Insert outputs; a known (task, digest) takes the newer writer and time."""
    if not rows:
        return
    if _bulk_sqlite(conn):
        _bulk.insert_many(conn, "outputs", rows, _bulk.OUTPUTS)
        return
    stmt = _insert(conn, OUTPUTS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["task_id", "digest"],
        set_={
            "created": stmt.excluded.created,
            "build_id": func.coalesce(stmt.excluded.build_id, OUTPUTS.c.build_id),
            "store": stmt.excluded.store,
            "last_used": _greatest(conn)(
                func.coalesce(OUTPUTS.c.last_used, 0.0), func.coalesce(stmt.excluded.last_used, 0.0)
            ),
        },
        where=stmt.excluded.created >= OUTPUTS.c.created,
    )
    conn.execute(stmt, list(rows))


def touch_outputs(conn: Connection, task_ids: Sequence[str], when: float) -> None:
    """A cache hit reused these tasks' outputs: their newest output rows were used `when`."""
    if not task_ids:
        return
    newest = (
        select(func.max(LATER.c.created)).where(LATER.c.task_id == OUTPUTS.c.task_id)
    ).scalar_subquery()
    stmt = (
        update(OUTPUTS)
        .where(OUTPUTS.c.task_id == bindparam("tid"), OUTPUTS.c.created == newest)
        .values(last_used=when)
    )
    conn.execute(stmt, [{"tid": task_id} for task_id in task_ids])


def put_runs(conn: Connection, rows: Sequence[Row]) -> None:
    """Insert runs (a build runs a task id at most once, so a run is written once)."""
    if rows and _bulk_sqlite(conn):
        _bulk.insert_many(conn, "runs", rows, _bulk.NOTHING)
    elif rows:
        conn.execute(_insert(conn, RUNS).on_conflict_do_nothing(), list(rows))


def put_environment(conn: Connection, env: Environment, now: float) -> None:
    """Record an environment once per distinct digest."""
    row = {
        "digest": env.digest,
        "python_version": env.python_version,
        "platform": env.platform,
        "packages": json.dumps(list(env.packages)),
        "created": now,
    }
    conn.execute(_insert(conn, ENVIRONMENTS).on_conflict_do_nothing(), [row])


def put_build(conn: Connection, row: Row) -> None:
    """Insert a build row."""
    conn.execute(BUILDS.insert(), [row])


def update_build(conn: Connection, build_id: str, values: Row) -> None:
    """Change columns of a build row."""
    conn.execute(update(BUILDS).where(BUILDS.c.id == build_id).values(**values))


def delete_build(conn: Connection, build_id: str) -> None:
    """Remove a build row and its runs (a build that stopped before it started a task)."""
    conn.execute(delete(RUNS).where(RUNS.c.build_id == build_id))
    conn.execute(delete(BUILDS).where(BUILDS.c.id == build_id))


def fill_cached_digests(conn: Connection, build_id: str) -> None:
    """Give this build's cached runs the digest of their task's latest recorded output."""
    latest = (
        OUTPUTS.select()
        .with_only_columns(OUTPUTS.c.digest)
        .where(OUTPUTS.c.task_id == RUNS.c.task_id)
        .order_by(OUTPUTS.c.created.desc())
        .limit(1)
        .scalar_subquery()
    )
    size = (
        OUTPUTS.select()
        .with_only_columns(OUTPUTS.c.size_raw)
        .where(OUTPUTS.c.task_id == RUNS.c.task_id)
        .order_by(OUTPUTS.c.created.desc())
        .limit(1)
        .scalar_subquery()
    )
    conn.execute(
        update(RUNS)
        .where(RUNS.c.build_id == build_id, RUNS.c.outcome == "cached", RUNS.c.digest.is_(None))
        .values(digest=latest, size_raw=size)
    )


def known_outputs(conn: Connection, task_ids: Sequence[str]) -> set[str]:
    """Which of these task ids have at least one output row."""
    found: set[str] = set()
    for chunk in chunks(task_ids):
        query = OUTPUTS.select().with_only_columns(OUTPUTS.c.task_id)
        found.update(conn.execute(query.where(OUTPUTS.c.task_id.in_(chunk))).scalars())
    return found


def chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    """Slices of at most `size` items (bound parameters per statement stay small)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
