"""Repair what `verify` found: the store goes back to "incomplete", never "broken".

- A damaged blob is deleted, and so is every action record that needs it: those
  tasks rebuild next time instead of failing to load.
- A missing blob's records are deleted for the same reason.
- An invalid record (malformed, or its spec hashes to another id) is deleted.
- An orphan temp file is deleted.
- A modified checkout of a directory output is deleted (checked out again on next use).
- In the registry, every output row these touched whose bytes are no longer in
  the store is marked deleted (reason `corrupt` or `missing`); history rows stay.
- An unrecorded blob is left for gc, which honours roots and the grace period.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stardag._errors import StoreError
from stardag.maintenance._findings import BLOB_DAMAGE, Finding, Kind
from stardag.store._directory import remove_checkout
from stardag.store._store import Store, record_path

if TYPE_CHECKING:
    from stardag.registry import Registry
    from stardag.registry._gcrows import OutputRef


@dataclass
class _Touched:
    """Task ids and digests a repair touched, by why: `corrupt` or `missing`."""

    tasks: dict[str, str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)

    def reason(self, row: OutputRef) -> str | None:
        return self.digests.get(row.digest) or self.tasks.get(row.task_id)


def repair(store: Store, registry: Registry | None, findings: Sequence[Finding]) -> None:
    """Fix each finding that can be fixed, noting on it what was done."""
    touched = _Touched()
    for finding in findings:
        reason = "corrupt" if finding.kind in BLOB_DAMAGE else "missing"
        if finding.kind in BLOB_DAMAGE:
            _drop_blob(store, finding)
        elif finding.kind is Kind.MISSING_BLOB:
            _drop_records(store, finding)
        elif finding.kind in (Kind.INVALID_RECORD, Kind.SPEC_MISMATCH):
            store.backend.delete(finding.path)
            finding.repaired = "deleted the record (the task rebuilds next time)"
            reason = "corrupt"
        elif finding.kind is Kind.ORPHAN_TEMP:
            store.backend.delete(finding.path)
            finding.repaired = "deleted the temp file"
            continue
        elif finding.kind is Kind.CHECKOUT_MODIFIED:
            remove_checkout(Path(finding.path))
            finding.repaired = "deleted the checkout (checked out again on next use)"
            continue
        elif finding.kind is Kind.OUTPUT_MISSING:
            finding.repaired = "marked the output deleted in the registry"
        else:
            continue
        touched.tasks.update(dict.fromkeys(finding.task_ids, reason))
        if finding.digest is not None:
            touched.digests[finding.digest] = reason
    if registry is not None and (touched.tasks or touched.digests):
        _mark_lost(store, registry, touched)


def _drop_blob(store: Store, finding: Finding) -> None:
    assert finding.digest is not None
    store.delete_blob(finding.digest)
    for task_id in finding.task_ids:
        store.delete_record(task_id)
    finding.repaired = "deleted the blob"
    if finding.task_ids:
        finding.repaired += (
            f" and the records of {len(finding.task_ids)} task(s) needing it (they rebuild)"
        )


def _drop_records(store: Store, finding: Finding) -> None:
    for task_id in finding.task_ids:
        store.backend.delete(record_path(task_id))
    finding.repaired = f"deleted the records of {len(finding.task_ids)} task(s) (they rebuild)"


def _mark_lost(store: Store, registry: Registry, touched: _Touched) -> None:
    """Mark deleted the touched output rows whose bytes the store no longer has."""
    from stardag.registry import _gcreads, _gcrows
    from stardag.registry._addons import ensure

    names = _gcreads.store_names(store.url, store.backend.url)
    ensure(registry)
    rows = registry.read(lambda conn: _gcrows.outputs(conn, names))
    lost: dict[str, set[tuple[str, str]]] = {}
    for row in rows:
        reason = touched.reason(row)
        if reason is not None and not row.deleted and not present(store, row.task_id, row.digest):
            lost.setdefault(reason, set()).add((row.task_id, row.digest))
    now = time.time()
    for reason, keys in lost.items():
        mark = functools.partial(
            _gcrows.mark_deleted, keys=keys, reason=reason, store=store.url, when=now
        )
        registry.write(mark)


def present(store: Store, task_id: str, digest: str) -> bool:
    """Whether the store still has the bytes of a task's output row (a blob, or inline)."""
    if store.has_blob(digest):
        return True
    try:
        record = store.get_record(task_id)
    except StoreError:
        return False
    return record is not None and record.digest == digest and record.inline is not None
