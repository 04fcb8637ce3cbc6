"""The registry questions the dashboard asks that `sd.registry` does not: pages and totals.

Newest-first pages of builds (keyset paging on the start time, so page 500 costs
what page 1 does), a build's runs in pages, search by task name, the registry's
totals of recorded outputs, and the task row itself. Every query is SQLAlchemy
Core over the registry's own tables, so it runs on SQLite and on PostgreSQL alike,
and every one is bounded by a limit: no page reads a whole table into memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from stardag.registry import BuildInfo, RunInfo
from stardag.registry._history import _counts, _runs
from stardag.registry._writes import BUILDS, ENVIRONMENTS, OUTPUTS, RUNS, TASKS

MAX_PAGE = 500


@dataclass(frozen=True)
class TaskRow:
    """A task as the registry knows it: spec, code location, the fingerprint last seen."""

    id: str
    namespace: str
    name: str
    version: str
    spec: str
    module: str | None
    qualname: str | None
    fingerprint: str | None
    first_seen: float


@dataclass(frozen=True)
class Totals:
    """What the registry records about the outputs in its stores."""

    outputs: int  # output rows: (task, digest) pairs
    blobs: int  # distinct digests among them
    raw_all: int  # bytes of every output, counting a shared blob once per task
    raw_unique: int  # bytes of the distinct blobs, uncompressed
    stored_unique: int  # bytes of the distinct blobs as stored (compressed)


def builds_page(
    conn: Connection, limit: int, before: tuple[float, str] | None
) -> list[tuple[BuildInfo, str]]:
    """Up to `limit` builds, newest first, started before the `(started, id)` cursor.

    Each comes with its own cursor: the stored start time exactly (`repr` of the
    float, which a datetime would round to microseconds) and its id.
    """
    query = select(BUILDS).order_by(BUILDS.c.started.desc(), BUILDS.c.id.desc())
    if before is not None:
        started, build_id = before
        query = query.where(
            or_(
                BUILDS.c.started < started,
                and_(BUILDS.c.started == started, BUILDS.c.id < build_id),
            )
        )
    rows = list(conn.execute(query.limit(min(limit, MAX_PAGE))))
    counts = _counts(conn, [row.id for row in rows])
    return [
        (BuildInfo.from_row(row, counts.get(row.id, {})), f"{row.started!r}:{row.id}")
        for row in rows
    ]


def build_header(conn: Connection, build_id: str) -> BuildInfo | None:
    """One build with its installed packages and counts, without its runs (see `build_runs`)."""
    query = (
        select(BUILDS, ENVIRONMENTS.c.packages)
        .outerjoin(ENVIRONMENTS, ENVIRONMENTS.c.digest == BUILDS.c.env_digest)
        .where(BUILDS.c.id == build_id)
    )
    row = conn.execute(query).first()
    if row is None:
        return None
    return BuildInfo.from_row(row, _counts(conn, [build_id]).get(build_id, {}))


def build_runs(conn: Connection, build_id: str, offset: int, limit: int) -> list[RunInfo]:
    """A page of one build's runs, in the order they started."""
    query = (
        _runs()
        .where(RUNS.c.build_id == build_id)
        .order_by(RUNS.c.started, RUNS.c.task_id)
        .offset(offset)
        .limit(min(limit, MAX_PAGE))
    )
    return [RunInfo.from_row(row) for row in conn.execute(query)]


def task_row(conn: Connection, task_id: str) -> TaskRow | None:
    """The registry's row of a task id, if it has one."""
    row = conn.execute(select(TASKS).where(TASKS.c.id == task_id)).first()
    return None if row is None else TaskRow(**row._mapping)


def tasks_named(conn: Connection, text: str, limit: int) -> list[TaskRow]:
    """Tasks whose `namespace.name` contains `text` (any case), most recently seen first."""
    label = func.lower(TASKS.c.namespace + "." + TASKS.c.name)
    query = (
        select(TASKS)
        .where(label.contains(text.lower(), autoescape=True))
        .order_by(TASKS.c.first_seen.desc(), TASKS.c.id)
        .limit(min(limit, MAX_PAGE))
    )
    return [TaskRow(**row._mapping) for row in conn.execute(query)]


def tasks_prefixed(conn: Connection, prefix: str, limit: int) -> list[TaskRow]:
    """Tasks whose id starts with a lowercase hex `prefix` (a range scan of the key)."""
    query = (
        select(TASKS)
        .where(TASKS.c.id >= prefix, TASKS.c.id < prefix + "g")
        .order_by(TASKS.c.id)
        .limit(min(limit, MAX_PAGE))
    )
    return [TaskRow(**row._mapping) for row in conn.execute(query)]


def digests_prefixed(conn: Connection, prefix: str, limit: int) -> list[str]:
    """Recorded output digests starting with a lowercase hex `prefix`."""
    query = (
        select(OUTPUTS.c.digest)
        .where(OUTPUTS.c.digest >= prefix, OUTPUTS.c.digest < prefix + "g")
        .distinct()
        .order_by(OUTPUTS.c.digest)
        .limit(min(limit, MAX_PAGE))
    )
    return list(conn.execute(query).scalars())


def builds_prefixed(conn: Connection, prefix: str, limit: int) -> list[str]:
    """Build ids starting with a lowercase hex `prefix`."""
    query = (
        select(BUILDS.c.id)
        .where(BUILDS.c.id >= prefix, BUILDS.c.id < prefix + "g")
        .order_by(BUILDS.c.id)
        .limit(min(limit, MAX_PAGE))
    )
    return list(conn.execute(query).scalars())


def totals(conn: Connection) -> Totals:
    """Counts and sizes of the recorded outputs, a shared blob counted once and per task."""
    per_blob = (
        select(
            OUTPUTS.c.digest,
            func.max(OUTPUTS.c.size_raw).label("raw"),
            func.max(OUTPUTS.c.size_stored).label("stored"),
        )
        .group_by(OUTPUTS.c.digest)
        .subquery()
    )
    blobs = conn.execute(
        select(func.count(), func.sum(per_blob.c.raw), func.sum(per_blob.c.stored))
    ).one()
    every = conn.execute(select(func.count(), func.sum(OUTPUTS.c.size_raw))).one()
    return Totals(
        outputs=int(every[0]),
        blobs=int(blobs[0]),
        raw_all=_int(every[1]),
        raw_unique=_int(blobs[1]),
        stored_unique=_int(blobs[2]),
    )


def _int(value: Any) -> int:
    return 0 if value is None else int(value)
