"""`reindex`: rebuild task, edge and output rows from a store's action records.

A store is self-describing: each action record holds its task's spec, its
static and dynamic dependency ids and its output's digest, serializer and sizes.
So a lost or fresh registry is recovered by reading every record. Rows already
present are kept; builds and runs cannot be recovered (the store never had them).
Where the task's class is imported in this process, its code location and
fingerprint are filled in too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import Connection

from stardag import _config
from stardag._errors import StoreError
from stardag.registry import _writes
from stardag.registry._db import Registry
from stardag.registry._fingerprint import code_location, fingerprint
from stardag.store._store import ActionRecord, Store, store_for
from stardag.task import _classes

logger = logging.getLogger("stardag.registry")
BATCH = 1000


@dataclass(frozen=True)
class ReindexReport:
    """What a reindex read and wrote."""

    store: str
    records: int  # action records read and written as rows
    invalid: int  # records that could not be read (skipped, logged)


def reindex(registry: Registry, root: str | Store | None = None) -> ReindexReport:
    """Write rows for every action record under `root` (default: the default root)."""
    store = root if isinstance(root, Store) else store_for(root or _config.target_root())
    records = invalid = 0
    batch: list[ActionRecord] = []
    for task_id in store.iter_records():
        try:
            record = store.get_record(task_id)
        except StoreError as exc:
            invalid += 1
            logger.warning("reindex: skipping the record of %s: %s", task_id, exc)
            continue
        if record is None:
            continue  # deleted while we walked
        batch.append(record)
        if len(batch) >= BATCH:
            records += _write(registry, store, batch)
    records += _write(registry, store, batch)
    return ReindexReport(store=store.url, records=records, invalid=invalid)


def _write(registry: Registry, store: Store, batch: list[ActionRecord]) -> int:
    if not batch:
        return 0
    now = time.time()
    tasks, edges, outputs = [], [], []
    for record in batch:
        tasks.append(_task_row(record, now))
        edges += _writes.edge_rows(record.task_id, record.requires, "static")
        edges += _writes.edge_rows(record.task_id, record.dynamic, "dynamic")
        outputs.append(_writes.output_row(record, store.url, None))  # reading is no use

    def write(conn: Connection) -> None:
        _writes.put_tasks(conn, tasks)
        _writes.put_edges(conn, edges)
        _writes.put_outputs(conn, outputs)

    registry.write(write)
    count = len(batch)
    batch.clear()
    return count


def _task_row(record: ActionRecord, now: float) -> _writes.Row:
    spec = record.spec
    cls = _classes.registered().get((spec.get("namespace", ""), spec.get("name", "")))
    if cls is None:
        return _writes.spec_row(record.task_id, spec, now)
    module, qualname = code_location(cls)
    return _writes.spec_row(record.task_id, spec, now, module, qualname, fingerprint(cls))
