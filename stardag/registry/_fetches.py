"""What came from a remote: lineage from its records, and one row per fetched output.

`remote_fetches` is an add-on table (like `_addons`: its own `MetaData`, created on
first use, nothing in the core schema points at it). A read-through hit is a run
with outcome `cached` plus a fetch row naming its build; a `stardag pull` writes
fetch rows with no build.

Lineage of a fetched task comes from the remote's action records (each holds its
spec and its static and dynamic dependency ids), so a fresh machine that read
through a shared cache knows the full upstream of what it fetched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, Float, MetaData, String, Table, select

from stardag._store import ActionRecord, Store, store_for
from stardag.registry import _writes
from stardag.registry._db import Registry, resolve
from stardag.registry._reindex import _task_row

if TYPE_CHECKING:
    from stardag._task import BaseTask
    from stardag.registry._rows import BatchRows

logger = logging.getLogger("stardag.registry")

FETCHES_METADATA = MetaData()
FETCHES = Table(
    "remote_fetches",
    FETCHES_METADATA,
    Column("task_id", String, primary_key=True),
    Column("fetched", Float, primary_key=True),
    Column("digest", String, nullable=False),
    Column("remote", String, nullable=False),  # the remote's URL
    Column("how", String, nullable=False),  # read-through, pull
    Column("build_id", String, nullable=True),  # the build that read through; None for pull
)


@dataclass(frozen=True)
class Fetch:
    """One output fetched from a remote."""

    task_id: str
    digest: str
    remote: str
    how: str
    build_id: str | None
    fetched: float


def lineage_rows(records: Sequence[ActionRecord]) -> tuple[list[_writes.Row], list[_writes.Row]]:
    """Task and edge rows for records (from any store)."""
    now = time.time()
    tasks, edges = [], []
    for record in records:
        tasks.append(_task_row(record, now))
        edges += _writes.edge_rows(record.task_id, record.requires, "static")
        edges += _writes.edge_rows(record.task_id, record.dynamic, "dynamic")
    return tasks, edges


def write_fetches(conn: Connection, rows: Sequence[_writes.Row]) -> None:
    """Insert fetch rows, creating the table on first use (in the caller's transaction)."""
    if rows:
        FETCHES_METADATA.create_all(conn, checkfirst=True)
        conn.execute(FETCHES.insert(), list(rows))


def add_read_through(batch: BatchRows, task: BaseTask, remote: str, when: float) -> None:
    """Add the lineage and the fetch row of a task a build read through from `remote`.

    Called on the recorder's writer thread, off the build's critical path. The
    lineage walk reads the remote's records; if it fails, the fetch is still counted
    and the lineage stops at the task (a warning says so).
    """
    from stardag._remote import closure

    try:
        records, _ = closure(store_for(remote), [task.id])
    except Exception as exc:  # noqa: BLE001  # lineage is best effort; the build stands
        logger.warning("lineage of %s from remote %s not recorded: %s", task.id, remote, exc)
        records = []
    tasks, edges = lineage_rows(records)
    batch.tasks.extend(tasks)
    batch.edges.extend(edges)
    digest = next((r.digest for r in records if r.task_id == task.id), "")
    batch.fetches.append(_fetch_row(task.id, digest, remote, "read-through", batch.build_id, when))


def record_pull(
    registry: Registry | str | None, records: Sequence[ActionRecord], local: Store, remote: str
) -> None:
    """Record pulled tasks: specs, lineage edges, outputs (in `local`) and fetch rows."""
    opened = resolve(registry)
    tasks, edges = lineage_rows(records)
    outputs = [_writes.output_row(record, local.url, None) for record in records]
    now = time.time()
    fetches = [_fetch_row(r.task_id, r.digest, remote, "pull", None, now) for r in records]

    def write(conn: Connection) -> None:
        _writes.put_tasks(conn, tasks)
        _writes.put_edges(conn, edges)
        _writes.put_outputs(conn, outputs)
        write_fetches(conn, fetches)

    opened.write(write)


def fetches(registry: Registry | str | None = None, *, build_id: str | None = None) -> list[Fetch]:
    """Fetched outputs, oldest first; with `build_id`, only that build's read-through hits."""
    opened = resolve(registry)

    def query(conn: Connection) -> list[Fetch]:
        FETCHES_METADATA.create_all(conn, checkfirst=True)
        stmt = select(FETCHES).order_by(FETCHES.c.fetched)
        if build_id is not None:
            stmt = stmt.where(FETCHES.c.build_id == build_id)
        return [Fetch(**row._mapping) for row in conn.execute(stmt)]

    return opened.write(query)


def _fetch_row(
    task_id: str, digest: str, remote: str, how: str, build_id: str | None, when: float
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "digest": digest,
        "remote": remote,
        "how": how,
        "build_id": build_id,
        "fetched": when,
    }
