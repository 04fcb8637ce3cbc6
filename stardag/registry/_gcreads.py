"""What gc and verify read from the registry (roots, edges, last use, current outputs),
in SQL that any connection runs.

`stardag gc` and `stardag verify` read whole tables of a 100,000-task registry, and in a
fresh process importing SQLAlchemy would cost them as much as the reads themselves
(~0.3 s). So each query here is plain SQL that SQLite and PostgreSQL read alike, run on
a `_lite` connection (a plain SQLite file, through `sqlite3`) or on an SQLAlchemy one
(`_db`'s: PostgreSQL, a read-only or in-memory SQLite) through its driver's cursor, and
gives plain tuples. Invariant: both ways run the same statement, so they give the same
rows (the registry tests run gc on SQLite through `sqlite3` and on PostgreSQL). This
module never imports SQLAlchemy; a driver error on an SQLAlchemy connection is raised as
SQLAlchemy's `DBAPIError`, which `Registry.read` turns into a `RegistryError`. Reading
makes nothing: a registry without an add-on table (`_addons`) has none of its rows.

Last use of a task or blob is the latest of its runs (a cache hit is a run, so reuse
counts as a write) and of its output rows' `last_used` (refreshed by cache hits) or
`created`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from stardag.registry._lite import LiteConnection

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from stardag.registry._db import Registry
    from stardag.registry._lite import LiteRegistry

Conn: TypeAlias = "LiteConnection | Connection"
# What gc and verify read: `_db`'s registry, or a plain SQLite file through `sqlite3`.
Reads: TypeAlias = "Registry | LiteRegistry"
CHUNK = 500  # parameters in one IN (...) list
BUILD_COLUMNS = "id, started, status, host, pid, roots"


@dataclass(frozen=True)
class BuildRef:
    """A build as gc sees it: when, where, and its root task ids."""

    id: str
    started: float
    status: str
    host: str
    pid: int
    roots: tuple[str, ...]


# -- running a statement -----------------------------------------------------------------------
def rows(conn: Conn, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """Every row of one SELECT as the driver gives it (tuples), fetched in one call;
    `sql` marks each parameter with `?`."""
    if isinstance(conn, LiteConnection):
        return conn.raw.execute(sql, params).fetchall()
    # The registry's drivers mark parameters `?` (sqlite3) or `%s` (psycopg, psycopg2,
    # pg8000); no statement here holds a `?` or `%` of its own.
    statement = sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")
    # The connection is open (we are inside its transaction), so it has a DBAPI one.
    driver = conn.connection.dbapi_connection
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement, tuple(params))
        return list(cursor.fetchall())
    except conn.dialect.loaded_dbapi.Error as exc:
        from sqlalchemy.exc import DBAPIError

        lost = conn.dialect.is_disconnect(exc, driver, cursor)
        error = conn.dialect.loaded_dbapi.Error
        raise DBAPIError.instance(
            statement, params, exc, error, connection_invalidated=lost, dialect=conn.dialect
        ) from exc
    finally:
        cursor.close()


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


# -- pins and builds as roots ------------------------------------------------------------------
def pins(conn: Conn) -> list[tuple[str, str]]:
    """(name, task id) of every pin, by name; none in a registry that never had the
    pins table (`_addons` makes it on first write: reading makes nothing)."""
    if not _has_table(conn, "pins"):
        return []
    query = "SELECT name, task_id FROM pins ORDER BY name"
    return [(name, task_id) for name, task_id in rows(conn, query)]


def _has_table(conn: Conn, name: str) -> bool:
    if isinstance(conn, LiteConnection) or conn.dialect.name == "sqlite":
        query = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        query = (
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = ?"
        )
    return bool(rows(conn, query, (name,))[0][0])


def _build_ref(row: Sequence[Any]) -> BuildRef:
    build_id, started, status, host, pid, roots = row
    return BuildRef(build_id, started, status, host, pid, tuple(json.loads(roots)))


def recent_builds(conn: Conn, keep_last: int | None, since: float | None) -> list[BuildRef]:
    """The `keep_last` newest builds, and every build started at or after `since`."""
    found: dict[str, BuildRef] = {}
    if keep_last:
        query = f"SELECT {BUILD_COLUMNS} FROM builds ORDER BY started DESC LIMIT ?"
        found |= {r[0]: _build_ref(r) for r in rows(conn, query, (keep_last,))}
    if since is not None:
        query = f"SELECT {BUILD_COLUMNS} FROM builds WHERE started >= ?"
        found |= {r[0]: _build_ref(r) for r in rows(conn, query, (since,))}
    return sorted(found.values(), key=lambda b: b.started, reverse=True)


def running_builds(conn: Conn) -> list[BuildRef]:
    """Builds whose row still says running (the caller judges whether they are alive)."""
    query = f"SELECT {BUILD_COLUMNS} FROM builds WHERE status = ?"
    return [_build_ref(r) for r in rows(conn, query, ("running",))]


def build_tasks(conn: Conn, build_ids: Sequence[str]) -> dict[str, list[str]]:
    """Every task id each build ran, reused or was asked for (a query per build: the
    runs' primary key leads with the build, and a row need not repeat its 64 hex)."""
    query = "SELECT task_id FROM runs WHERE build_id = ?"
    return {b: [task_id for (task_id,) in rows(conn, query, (b,))] for b in build_ids}


# -- edges -------------------------------------------------------------------------------------
def all_edges(conn: Conn) -> dict[str, list[str]]:
    """Static and dynamic dependencies of every task id the registry knows, in one query
    (gc walks most of them: one pass beats a query per level of the closure)."""
    deps: dict[str, list[str]] = {}
    for task_id, dep_id in rows(conn, "SELECT task_id, dep_id FROM edges"):
        found = deps.get(task_id)
        if found is None:
            deps[task_id] = [dep_id]
        else:
            found.append(dep_id)
    return deps


# -- last use ----------------------------------------------------------------------------------
def last_used_tasks(conn: Conn, task_ids: Collection[str]) -> dict[str, float]:
    """The latest run or output time of each task id that has one."""
    return _latest(conn, "task_id", list(task_ids))


def last_used_digests(conn: Conn, digests: Collection[str]) -> dict[str, float]:
    """The latest run or output time of each blob digest that has one."""
    return _latest(conn, "digest", list(digests))


def _latest(conn: Conn, key: str, keys: list[str]) -> dict[str, float]:
    latest: dict[str, float] = {}
    for chunk in _chunks(keys):
        where = f"WHERE {key} IN ({_marks(len(chunk))}) GROUP BY {key}"
        for query in (
            f"SELECT {key}, max(coalesce(ended, started)) FROM runs {where}",
            # an output row's `last_used` is refreshed by cache hits
            f"SELECT {key}, max(coalesce(last_used, created)) FROM outputs {where}",
        ):
            for found, when in rows(conn, query, chunk):
                if when is not None and when > latest.get(found, float("-inf")):
                    latest[found] = float(when)
    return latest


def used_since(conn: Conn, since: float, skip_builds: Collection[str] = ()) -> set[str]:
    """Task ids run, reused or given an output at or after `since`, leaving out the
    runs and outputs of `skip_builds` (a caller that holds their tasks already)."""
    runs = "SELECT task_id FROM runs WHERE coalesce(ended, started) >= ?"
    outputs = "SELECT task_id FROM outputs WHERE coalesce(last_used, created) >= ?"
    skip: list[str] = []
    if 0 < len(skip_builds) <= CHUNK:
        skip = list(skip_builds)
        runs += f" AND build_id NOT IN ({_marks(len(skip))})"
        outputs += f" AND (build_id IS NULL OR build_id NOT IN ({_marks(len(skip))}))"
    found = {task_id for (task_id,) in rows(conn, runs, (since, *skip))}
    found.update(task_id for (task_id,) in rows(conn, outputs, (since, *skip)))
    return found


# -- outputs -----------------------------------------------------------------------------------
def store_names(url: str, backend_url: str) -> set[str]:
    """The names a store's output rows may carry: its URL as configured, and resolved."""
    names = {url, backend_url}
    if "://" not in url:
        names.add(os.path.abspath(os.path.expanduser(url)))
    return names


def output_keys(conn: Conn, stores: Collection[str]) -> list[tuple[str, str, float, bool]]:
    """(task id, digest, created, marked deleted) of each output row written to one of
    `stores` (or to an unrecorded store); verify reads them all. A row is marked deleted
    when a deletion at or after its `created` exists (see `_addons`); a registry that
    never had the `output_deletions` table has none."""
    deleted = "0"
    if _has_table(conn, "output_deletions"):
        deleted = (
            "(SELECT count(*) FROM output_deletions d WHERE d.task_id = o.task_id "
            "AND d.digest = o.digest AND d.deleted >= o.created)"
        )
    names = sorted(stores)
    query = (
        f"SELECT o.task_id, o.digest, o.created, {deleted} FROM outputs o "
        f"WHERE o.store IN ({_marks(len(names))}) OR o.store IS NULL"
    )
    return [(t, d, c, n > 0) for t, d, c, n in rows(conn, query, names)]
