"""The registry questions the dashboard asks that `sd.registry` does not: pages and totals.

Newest-first pages of builds (keyset paging on the start time, so page 500 costs
what page 1 does), a build's runs in pages, search by task name, the registry's
totals of recorded outputs, and the task row itself. Every query is SQLAlchemy
Core over the registry's own tables, so it runs on SQLite and on PostgreSQL alike,
and every one is bounded by a limit: no page reads a whole table into memory.
"""

from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from stardag.registry import BuildInfo, Registry
from stardag.registry._history import _counts
from stardag.registry._writes import BUILDS, ENVIRONMENTS, OUTPUTS, RUNS, TASKS

MAX_PAGE = 500
MAX_FAMILIES = 20  # task families a name search lists


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


_TIMELINE = (
    RUNS.c.build_id,
    RUNS.c.task_id,
    TASKS.c.namespace,
    TASKS.c.name,
    RUNS.c.outcome,
    RUNS.c.started,
    RUNS.c.ended,
    RUNS.c.duration,
    RUNS.c.digest,
    RUNS.c.size_raw,
    RUNS.c.fingerprint,
    RUNS.c.error_type,
    RUNS.c.error_message,
    RUNS.c.traceback,
)


def build_runs(conn: Connection, build_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
    """A page of one build's runs, in the order they started, as the API's `Run` data.

    Made straight from the database's tuples: a `RunInfo` per run (with the build's
    environment, which a timeline never shows) cost a 500-run page most of its time.
    """
    query = (
        select(*_TIMELINE)
        .join(TASKS, TASKS.c.id == RUNS.c.task_id)
        .where(RUNS.c.build_id == build_id)
        .order_by(RUNS.c.started, RUNS.c.task_id)
        .offset(offset)
        .limit(min(limit, MAX_PAGE))
    )
    result = conn.execute(query)
    rows = result.cursor.fetchall() if result.cursor is not None else result.fetchall()
    result.close()
    return [_run_data(row) for row in rows]


def _run_data(row: Any) -> dict[str, Any]:
    (build_id, task_id, namespace, name, outcome, started, ended, duration) = row[:8]
    (digest, size_raw, fingerprint, error_type, error_message, traceback) = row[8:]
    return {
        "build_id": build_id,
        "task_id": task_id,
        "label": f"{namespace}.{name}" if namespace else (name or "?"),
        "outcome": outcome,
        "started": iso(started),
        "ended": None if ended is None else iso(ended),
        "duration": duration,
        "digest": digest,
        "size_raw": size_raw,
        "fingerprint": fingerprint,
        "error_type": error_type,
        "error_message": error_message,
        "traceback": traceback,
        "verdict": None,
        "recorded_digest": None,
    }


def iso(seconds: float) -> str:
    """A stored time as the API writes every time: ISO 8601 in UTC, with a `Z`."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def task_row(conn: Connection, task_id: str) -> TaskRow | None:
    """The registry's row of a task id, if it has one."""
    row = conn.execute(select(TASKS).where(TASKS.c.id == task_id)).first()
    return None if row is None else TaskRow(**row._mapping)


def producers(conn: Connection, digest: str, limit: int) -> list[TaskRow]:
    """Up to `limit` tasks recorded with the output `digest`, newest output first.

    One query: a search or an output page needs the tasks, not the runs that wrote
    them, so it asks for neither those runs nor each task's row on its own.
    """
    query = (
        select(TASKS)
        .join(OUTPUTS, OUTPUTS.c.task_id == TASKS.c.id)
        .where(OUTPUTS.c.digest == digest)
        .order_by(OUTPUTS.c.created.desc(), OUTPUTS.c.task_id)
        .limit(min(limit, MAX_PAGE))
    )
    return [TaskRow(**row._mapping) for row in conn.execute(query)]


def tasks_named(conn: Connection, text: str, limit: int) -> tuple[dict[str, int], list[TaskRow]]:
    """Task families whose `namespace.name` contains `text` (any case), with their sizes,
    and up to `limit` of their tasks, a few of each family.

    The families come from the (namespace, name) index alone and are matched here,
    so the search never scans the task rows themselves; only matching families' rows
    are read, a few per family.
    """
    wanted = text.lower()
    names = select(TASKS.c.namespace, TASKS.c.name, func.count()).group_by(
        TASKS.c.namespace, TASKS.c.name
    )
    families: dict[tuple[str, str], tuple[str, int]] = {}
    for namespace, name, count in conn.execute(names):
        label = f"{namespace}.{name}" if namespace else name
        if wanted in label.lower() and len(families) < MAX_FAMILIES:
            families[(namespace, name)] = (label, int(count))
    each = max(1, limit // max(1, len(families)))
    found: list[TaskRow] = []
    for namespace, name in families:
        # A few of the family's rows in index order, unsorted: ordering a family of
        # thousands by first_seen would read every one of its rows.
        query = select(TASKS).where(TASKS.c.namespace == namespace, TASKS.c.name == name)
        found.extend(TaskRow(**row._mapping) for row in conn.execute(query.limit(each)))
    found.sort(key=lambda row: (-row.first_seen, row.id))
    return dict(families.values()), found[:limit]


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
    """Counts and sizes of the recorded outputs, a shared blob counted once and per task.

    One pass over the outputs in table order, summed here: grouping by digest in SQL
    would visit the rows in digest order, one random read each.
    """
    result = conn.execute(select(OUTPUTS.c.digest, OUTPUTS.c.size_raw, OUTPUTS.c.size_stored))
    rows = result.cursor.fetchall() if result.cursor is not None else result.fetchall()
    result.close()
    unique: dict[str, tuple[int, int]] = {}
    raw_all = 0
    for digest, raw, stored in rows:
        raw_all += raw
        seen = unique.get(digest)
        if seen is None or seen < (raw, stored):
            unique[digest] = (raw, stored)
    return Totals(
        outputs=len(rows),
        blobs=len(unique),
        raw_all=raw_all,
        raw_unique=sum(raw for raw, _ in unique.values()),
        stored_unique=sum(stored for _, stored in unique.values()),
    )


class TotalsCache:
    """`totals` of one registry, kept for `FRESH_SECONDS` and recomputed off-request.

    Summing every output row takes longer than a page may wait on a big registry, so
    the server starts it when it starts; a request gets the newest sums (waiting only
    for the very first), and one older than `FRESH_SECONDS` starts a fresh pass.
    """

    FRESH_SECONDS = 30.0

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._value: Totals | None = None
        self._at = 0.0
        self._running = False

    def refresh(self) -> None:
        """Start a pass in the background unless one is running."""
        with self._lock:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name="stardag-ui-totals", daemon=True).start()

    def _run(self) -> None:
        try:
            value = self.registry.read(totals)
            with self._lock:
                self._value, self._at = value, time.time()
        finally:
            with self._lock:
                self._running = False
            self._ready.set()

    def get(self) -> Totals:
        """The newest sums; computed here if none were ever made (or the last pass failed)."""
        with self._lock:
            value, age = self._value, time.time() - self._at
        if value is None:
            self._ready.wait(timeout=60)
            with self._lock:
                value = self._value
            if value is None:
                value = self.registry.read(totals)
        elif age > self.FRESH_SECONDS:
            self.refresh()
        return value
