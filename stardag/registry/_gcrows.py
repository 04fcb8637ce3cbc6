"""What gc and verify ask the registry: roots from builds, edges, last use, deleted outputs.

Last use of a task or blob is the latest of its runs (a cache hit is a run, so
reuse counts as a write) and of its output rows' `last_used` (refreshed by cache
hits) or `created`. Output rows are
never removed: a row is marked deleted in `output_deletions` (see `_addons`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from stardag.registry import _models
from stardag.registry._addons import OUTPUT_DELETIONS

OUTPUTS: Table = _models.OutputRow.__table__  # type: ignore[attr-defined]
RUNS: Table = _models.RunRow.__table__  # type: ignore[attr-defined]
BUILDS: Table = _models.BuildRow.__table__  # type: ignore[attr-defined]
EDGES: Table = _models.EdgeRow.__table__  # type: ignore[attr-defined]
CHUNK = 500


@dataclass(frozen=True)
class BuildRef:
    """A build as gc sees it: when, where, and its root task ids."""

    id: str
    started: float
    status: str
    host: str
    pid: int
    roots: tuple[str, ...]


@dataclass(frozen=True)
class OutputRef:
    """An output row: a task's output blob, with whether it is marked deleted."""

    task_id: str
    digest: str
    size_raw: int
    size_stored: int
    created: float
    store: str | None
    deleted: bool


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _fetch_all(conn: Connection, query: Select[Any]) -> list[Any]:
    """Every row of `query` as the driver gives it, fetched in one call: gc and verify
    read 100,000-row tables, where SQLAlchemy's row objects cost as much again as the
    query itself. The parameters (task and build ids) are rendered into the SQL by the
    dialect; a driver error is raised as SQLAlchemy would raise it (the query re-run)."""
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    # The connection is open (we are inside its transaction), so it has a DBAPI one.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    except conn.dialect.loaded_dbapi.Error:
        return list(conn.execute(query).all())  # raises as a DBAPIError, which callers handle
    finally:
        cursor.close()


def _build_ref(row: Any) -> BuildRef:
    return BuildRef(
        row.id, row.started, row.status, row.host, row.pid, tuple(json.loads(row.roots))
    )


# -- builds as roots ---------------------------------------------------------------------------
def recent_builds(conn: Connection, keep_last: int | None, since: float | None) -> list[BuildRef]:
    """The `keep_last` newest builds, and every build started at or after `since`."""
    found: dict[str, BuildRef] = {}
    if keep_last:
        query = select(BUILDS).order_by(BUILDS.c.started.desc()).limit(keep_last)
        found |= {r.id: _build_ref(r) for r in conn.execute(query)}
    if since is not None:
        query = select(BUILDS).where(BUILDS.c.started >= since)
        found |= {r.id: _build_ref(r) for r in conn.execute(query)}
    return sorted(found.values(), key=lambda b: b.started, reverse=True)


def running_builds(conn: Connection) -> list[BuildRef]:
    """Builds whose row still says running (the caller judges whether they are alive)."""
    query = select(BUILDS).where(BUILDS.c.status == "running")
    return [_build_ref(r) for r in conn.execute(query)]


def build_tasks(conn: Connection, build_ids: Sequence[str]) -> dict[str, list[str]]:
    """Every task id each build ran, reused or was asked for."""
    tasks: dict[str, list[str]] = {b: [] for b in build_ids}
    for chunk in _chunks(list(build_ids)):
        query = select(RUNS.c.build_id, RUNS.c.task_id).where(RUNS.c.build_id.in_(chunk))
        for build_id, task_id in _fetch_all(conn, query):
            tasks[build_id].append(task_id)
    return tasks


def edges(conn: Connection, task_ids: Sequence[str]) -> dict[str, list[str]]:
    """Static and dynamic dependencies of each task id the registry knows."""
    deps: dict[str, list[str]] = {}
    for chunk in _chunks(list(task_ids)):
        query = select(EDGES.c.task_id, EDGES.c.dep_id).where(EDGES.c.task_id.in_(chunk))
        for task_id, dep_id in conn.execute(query):
            deps.setdefault(task_id, []).append(dep_id)
    return deps


def all_edges(conn: Connection) -> dict[str, list[str]]:
    """Static and dynamic dependencies of every task id the registry knows, in one query
    (gc walks most of them: one pass beats a query per level of the closure)."""
    deps: dict[str, list[str]] = {}
    for task_id, dep_id in _fetch_all(conn, select(EDGES.c.task_id, EDGES.c.dep_id)):
        found = deps.get(task_id)
        if found is None:
            deps[task_id] = [dep_id]
        else:
            found.append(dep_id)
    return deps


# -- last use ----------------------------------------------------------------------------------
def last_used_tasks(conn: Connection, task_ids: Collection[str]) -> dict[str, float]:
    """The latest run or output time of each task id that has one."""
    return _latest(conn, RUNS.c.task_id, OUTPUTS.c.task_id, list(task_ids))


def last_used_digests(conn: Connection, digests: Collection[str]) -> dict[str, float]:
    """The latest run or output time of each blob digest that has one."""
    return _latest(conn, RUNS.c.digest, OUTPUTS.c.digest, list(digests))


def _latest(conn: Connection, run_key: Any, output_key: Any, keys: list[str]) -> dict[str, float]:
    latest: dict[str, float] = {}
    for chunk in _chunks(keys):
        runs = select(run_key, func.max(func.coalesce(RUNS.c.ended, RUNS.c.started)))
        used = func.coalesce(OUTPUTS.c.last_used, OUTPUTS.c.created)  # a cache hit refreshes it
        outputs = select(output_key, func.max(used))
        for query in (
            runs.where(run_key.in_(chunk)).group_by(run_key),
            outputs.where(output_key.in_(chunk)).group_by(output_key),
        ):
            for key, when in conn.execute(query):
                if when is not None and when > latest.get(key, float("-inf")):
                    latest[key] = float(when)
    return latest


def used_since(conn: Connection, since: float, skip_builds: Collection[str] = ()) -> set[str]:
    """Task ids run, reused or given an output at or after `since`, leaving out the
    runs and outputs of `skip_builds` (a caller that holds their tasks already)."""
    runs = select(RUNS.c.task_id).where(func.coalesce(RUNS.c.ended, RUNS.c.started) >= since)
    outputs = select(OUTPUTS.c.task_id).where(
        func.coalesce(OUTPUTS.c.last_used, OUTPUTS.c.created) >= since
    )
    if 0 < len(skip_builds) <= CHUNK:
        skip = list(skip_builds)
        runs = runs.where(RUNS.c.build_id.not_in(skip))
        outputs = outputs.where(OUTPUTS.c.build_id.is_(None) | OUTPUTS.c.build_id.not_in(skip))
    found = set(conn.execute(runs).scalars().all())
    found.update(conn.execute(outputs).scalars().all())
    return found


# -- outputs and their deletion ----------------------------------------------------------------
def _times_deleted() -> Any:
    """How often an output row's blob was marked deleted since the row was written."""
    return (
        select(func.count())
        .select_from(OUTPUT_DELETIONS)
        .where(
            OUTPUT_DELETIONS.c.task_id == OUTPUTS.c.task_id,
            OUTPUT_DELETIONS.c.digest == OUTPUTS.c.digest,
            OUTPUT_DELETIONS.c.deleted >= OUTPUTS.c.created,
        )
        .scalar_subquery()
    )


def outputs(conn: Connection, stores: Collection[str]) -> list[OutputRef]:
    """Output rows written to one of `stores` (or to an unrecorded store)."""
    deleted = _times_deleted()
    query = select(OUTPUTS, deleted.label("is_deleted")).where(
        OUTPUTS.c.store.in_(list(stores)) | OUTPUTS.c.store.is_(None)
    )
    return [
        OutputRef(
            r.task_id, r.digest, r.size_raw, r.size_stored, r.created, r.store, r.is_deleted > 0
        )
        for r in conn.execute(query)
    ]


def output_keys(conn: Connection, stores: Collection[str]) -> list[tuple[str, str, float, bool]]:
    """`outputs`, lean: (task id, digest, created, marked deleted) of each output row
    written to one of `stores` (or to an unrecorded store); verify reads them all."""
    deleted = _times_deleted()
    query = select(OUTPUTS.c.task_id, OUTPUTS.c.digest, OUTPUTS.c.created, deleted).where(
        OUTPUTS.c.store.in_(list(stores)) | OUTPUTS.c.store.is_(None)
    )
    return [(t, d, c, n > 0) for t, d, c, n in _fetch_all(conn, query)]


def mark_deleted(
    conn: Connection, keys: Collection[tuple[str, str]], reason: str, store: str, when: float
) -> None:
    """Mark output rows (task id, digest) deleted from `store` at `when`, for `reason`."""
    if not keys:
        return
    rows = [
        {"task_id": t, "digest": d, "deleted": when, "reason": reason, "store": store}
        for t, d in keys
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(OUTPUT_DELETIONS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["task_id", "digest"],
        set_={"deleted": stmt.excluded.deleted, "reason": stmt.excluded.reason},
    )
    conn.execute(stmt, rows)


def outputs_of_digests(
    conn: Connection, digests: Collection[str], stores: Collection[str]
) -> list[tuple[str, str]]:
    """(task id, digest) of every output row of these digests in one of `stores`."""
    pairs: list[tuple[str, str]] = []
    in_store = OUTPUTS.c.store.in_(list(stores)) | OUTPUTS.c.store.is_(None)
    for chunk in _chunks(list(digests)):
        query = select(OUTPUTS.c.task_id, OUTPUTS.c.digest).where(
            OUTPUTS.c.digest.in_(chunk), in_store
        )
        pairs.extend((t, d) for t, d in conn.execute(query))
    return pairs


def store_names(url: str, backend_url: str) -> set[str]:
    """The names a store's output rows may carry: its URL as configured, and resolved."""
    names = {url, backend_url}
    if "://" not in url:
        names.add(os.path.abspath(os.path.expanduser(url)))
    return names
