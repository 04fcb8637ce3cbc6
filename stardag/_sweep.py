"""gc, the sweep half: delete what a `GcPlan` marked, checking each one again first.

A dry run (the default) deletes nothing and reports what would go. Otherwise
records go first, then blobs; just before each delete the candidate is checked
again, and kept if since the mark it was written or used (its file is newer than
the grace period, or the registry has a run of its task or digest within it), or
if it is a blob that a record kept on re-check needs. Output rows of deleted
blobs, and of inline outputs whose records went, are marked deleted in the
registry; every other registry row (tasks, edges, builds, runs) stays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stardag._gc import Candidate, GcPlan
from stardag._store import Store, blob_path, record_path

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from stardag.registry import Registry


@dataclass
class GcResult:
    """What a sweep did (or, in a dry run, would do)."""

    dry_run: bool
    deleted: list[Candidate] = field(default_factory=list)
    kept_on_recheck: list[Candidate] = field(default_factory=list)

    @property
    def freed(self) -> int:
        """Bytes freed (or that would be)."""
        return sum(c.size for c in self.deleted)

    def by_family(self) -> dict[str, tuple[int, int]]:
        """Task family -> (records and blobs deleted, bytes freed), by family name."""
        found: dict[str, tuple[int, int]] = {}
        for candidate in self.deleted:
            count, size = found.get(candidate.family, (0, 0))
            found[candidate.family] = (count + 1, size + candidate.size)
        return dict(sorted(found.items()))

    def count(self, kind: str) -> int:
        """How many records or blobs were deleted."""
        return sum(1 for c in self.deleted if c.kind == kind)


def sweep(plan: GcPlan, registry: Registry | None, *, apply: bool = False) -> GcResult:
    """Delete the plan's candidates (only with `apply`), re-checking each just before."""
    if not apply:
        return GcResult(dry_run=True, deleted=plan.candidates)
    result = GcResult(dry_run=False)
    held: set[str] = set()  # blobs that records kept on re-check need
    for candidate in plan.candidates:
        if candidate.key in held or _used_since_mark(plan, registry, candidate):
            result.kept_on_recheck.append(candidate)
            held.update(_needs(plan, candidate))
            continue
        _delete(plan.store, candidate)
        result.deleted.append(candidate)
    if registry is not None:
        _mark_deleted(plan.store, registry, result.deleted)
    return result


def _needs(plan: GcPlan, candidate: Candidate) -> list[str]:
    if candidate.kind != "record":
        return []
    return [b.key for b in plan.blobs if candidate.key in b.owners]


def _used_since_mark(plan: GcPlan, registry: Registry | None, candidate: Candidate) -> bool:
    cutoff = time.time() - plan.grace
    path = record_path(candidate.key) if candidate.kind == "record" else blob_path(candidate.key)
    try:
        if plan.store.backend.stat(path).mtime >= cutoff:
            return True
    except FileNotFoundError:
        return False  # already gone: deleting again is harmless
    if registry is None:
        return False
    return registry.read(lambda conn: _registry_used(conn, candidate, cutoff))


def _registry_used(conn: Connection, candidate: Candidate, cutoff: float) -> bool:
    from stardag.registry import _gcrows

    if candidate.kind == "record":
        used = _gcrows.last_used_tasks(conn, [candidate.key])
    else:
        used = _gcrows.last_used_digests(conn, [candidate.key])
        used |= _gcrows.last_used_tasks(conn, candidate.owners)
    return any(when >= cutoff for when in used.values())


def _delete(store: Store, candidate: Candidate) -> None:
    if candidate.kind == "record":
        store.delete_record(candidate.key)
    else:
        store.delete_blob(candidate.key)


def _mark_deleted(store: Store, registry: Registry, deleted: list[Candidate]) -> None:
    blobs = {c.key for c in deleted if c.kind == "blob"}
    inline = {(c.key, c.digest) for c in deleted if c.inline and c.digest is not None}
    if not blobs and not inline:
        return
    from stardag.registry import _gcrows
    from stardag.registry._addons import ensure

    names = _gcrows.store_names(store.url, store.backend.url)
    now = time.time()

    def mark(conn: Connection) -> None:
        keys = set(_gcrows.outputs_of_digests(conn, blobs, names)) | inline
        _gcrows.mark_deleted(conn, keys, "gc", store.url, now)

    ensure(registry)
    registry.write(mark)
