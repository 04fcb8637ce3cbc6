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

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Float, MetaData, String, Table, inspect, select

from stardag.registry import _writes
from stardag.registry._db import Registry, lock_schema, resolve
from stardag.registry._reindex import _task_row
from stardag.store._store import ActionRecord, Store

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
        _ensure_table(conn)
        conn.execute(FETCHES.insert(), list(rows))


def _ensure_table(conn: Connection) -> None:
    """Create the fetches table if it is missing (under the schema lock, in the caller's
    transaction)."""
    if not inspect(conn).has_table(FETCHES.name):
        lock_schema(conn)
        FETCHES_METADATA.create_all(conn, checkfirst=True)


def record_pull(
    registry: Registry | str | None, records: Sequence[ActionRecord], local: Store, remote: str
) -> None:
    """Record pulled tasks: specs, lineage edges, outputs (in `local`) and fetch rows."""
    opened = resolve(registry)
    tasks, edges = lineage_rows(records)
    outputs = [_writes.output_row(record, local.url, None) for record in records]
    now = time.time()
    fetches = [fetch_row(r.task_id, r.digest, remote, "pull", None, now) for r in records]

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
        _ensure_table(conn)
        stmt = select(FETCHES).order_by(FETCHES.c.fetched)
        if build_id is not None:
            stmt = stmt.where(FETCHES.c.build_id == build_id)
        return [Fetch(**row._mapping) for row in conn.execute(stmt)]

    return opened.write(query)


def fetch_row(
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
