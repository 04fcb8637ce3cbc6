"""Repair what `verify` found: the store goes back to "incomplete", never "broken".

- A damaged blob is deleted, and so is every action record that needs it: those
  tasks rebuild next time instead of failing to load.
- A missing blob's records are deleted for the same reason.
- An invalid record (malformed, or its spec hashes to another id) is deleted.
- An orphan temp file is deleted.
- The registry marks each lost output deleted (reason `corrupt` or `missing`);
  its history rows stay.
- An unrecorded blob is left for gc, which honours roots and the grace period.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from stardag._record import ActionRecord
from stardag._store import Store, record_path
from stardag._verify import BLOB_DAMAGE, Finding, Kind

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from stardag.registry import Registry


def repair(
    store: Store,
    registry: Registry | None,
    findings: Sequence[Finding],
    records: Mapping[str, ActionRecord],
) -> None:
    """Fix each finding that can be fixed, noting on it what was done."""
    lost: dict[str, set[tuple[str, str]]] = {"corrupt": set(), "missing": set()}
    for finding in findings:
        if finding.kind in BLOB_DAMAGE:
            lost["corrupt"] |= _drop_blob(store, finding, records)
        elif finding.kind is Kind.MISSING_BLOB:
            lost["missing"] |= _drop_records(store, finding, records)
        elif finding.kind in (Kind.INVALID_RECORD, Kind.SPEC_MISMATCH):
            store.backend.delete(finding.path)
            finding.repaired = "deleted the record (the task rebuilds next time)"
        elif finding.kind is Kind.ORPHAN_TEMP:
            store.backend.delete(finding.path)
            finding.repaired = "deleted the temp file"
        elif finding.kind is Kind.OUTPUT_MISSING and finding.digest is not None:
            lost["missing"] |= {(t, finding.digest) for t in finding.task_ids}
            finding.repaired = "marked the output deleted in the registry"
    if registry is not None:
        _mark_lost(store, registry, lost)


def _drop_blob(
    store: Store, finding: Finding, records: Mapping[str, ActionRecord]
) -> set[tuple[str, str]]:
    assert finding.digest is not None
    store.delete_blob(finding.digest)
    lost = _drop_records(store, finding, records)
    lost.add(("", finding.digest))  # every output row of this digest, whatever its task
    what = "deleted the blob"
    if finding.task_ids:
        what += f" and the record(s) of {len(finding.task_ids)} task(s), which rebuild next time"
    finding.repaired = what
    return lost


def _drop_records(
    store: Store, finding: Finding, records: Mapping[str, ActionRecord]
) -> set[tuple[str, str]]:
    lost = set()
    for task_id in finding.task_ids:
        record = records.get(task_id)
        store.backend.delete(record_path(task_id))
        if record is not None:
            lost.add((task_id, record.digest))
    finding.repaired = f"deleted the record(s) of {len(finding.task_ids)} task(s) (they rebuild)"
    return lost


def _mark_lost(store: Store, registry: Registry, lost: dict[str, set[tuple[str, str]]]) -> None:
    from stardag.registry import _gcrows
    from stardag.registry._addons import ensure

    names = _gcrows.store_names(store.url, store.backend.url)
    ensure(registry)
    now = time.time()
    for reason, keys in lost.items():
        if keys:
            registry.write(
                functools.partial(
                    _mark, names=names, keys=keys, reason=reason, store_url=store.url, now=now
                )
            )


def _mark(
    conn: Connection,
    names: set[str],
    keys: set[tuple[str, str]],
    reason: str,
    store_url: str,
    now: float,
) -> None:
    """Mark output rows deleted: ("", digest) stands for every row of that digest."""
    from stardag.registry import _gcrows

    whole = {d for t, d in keys if not t}
    found = set(_gcrows.outputs_of_digests(conn, whole, names))
    found |= {(t, d) for t, d in keys if t}
    _gcrows.mark_deleted(conn, found, reason, store_url, now)
