"""gc, the sweep half: delete what a `GcPlan` marked, checking each one again first.

A dry run (the default) deletes nothing and reports what would go. Otherwise
records go first, then blobs; just before each delete the candidate is checked
again, and kept if it was written or used since the mark (or since the oldest
running build began): its file's mtime (a write or a cache hit refreshes it), or a
run of its task or digest in the registry; or if it is a blob that a record kept on
re-check needs. Whatever the grace period, nothing written or reused since the mark
is deleted. The registry is asked for `RECHECK_BATCH` candidates at a time; then,
holding the store's gc lock exclusive (`stardag.store._lock`), each file's mtime is
checked again and the file deleted, so a builder's cache hit never falls in between.
Output rows of deleted blobs, and of inline outputs whose records went, are marked
deleted in the registry; every other registry row (tasks, edges, builds, runs) stays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stardag.maintenance._gc import Candidate, GcPlan
from stardag.store._store import Store, blob_path, record_path

RECHECK_BATCH = 64  # candidates re-checked in one registry read, then deleted at once

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
    needs = _needs(plan)
    held: set[str] = set()  # blobs that records kept on re-check need
    candidates = plan.candidates
    for start in range(0, len(candidates), RECHECK_BATCH):
        batch = candidates[start : start + RECHECK_BATCH]
        used = _used_in_registry(plan, registry, batch)
        with plan.store.lock.exclusive():
            for candidate in batch:
                keep = candidate.key in held or candidate.key in used
                if keep or _written_since(plan, candidate):
                    result.kept_on_recheck.append(candidate)
                    held.update(needs.get(candidate.key, ()))
                    continue
                _delete(plan.store, candidate)
                result.deleted.append(candidate)
    if registry is not None:
        _mark_deleted(plan.store, registry, result.deleted)
    return result


def _needs(plan: GcPlan) -> dict[str, list[str]]:
    """Candidate task id -> the candidate blobs its output needs."""
    found: dict[str, list[str]] = {}
    for blob in plan.blobs:
        for owner in blob.owners:
            found.setdefault(owner, []).append(blob.key)
    return found


def _written_since(plan: GcPlan, candidate: Candidate) -> bool:
    """Whether the candidate's file was written or touched since the mark."""
    path = record_path(candidate.key) if candidate.kind == "record" else blob_path(candidate.key)
    try:
        return plan.store.backend.stat(path).mtime >= plan.recheck_cutoff(files=True)
    except FileNotFoundError:
        return False  # already gone: deleting again is harmless


def _used_in_registry(plan: GcPlan, registry: Registry | None, batch: list[Candidate]) -> set[str]:
    """Keys of the batch whose task or digest the registry saw used since the mark."""
    if registry is None:
        return set()
    cutoff = plan.recheck_cutoff(files=False)
    return registry.read(lambda conn: _used(conn, batch, cutoff))


def _used(conn: Connection, batch: list[Candidate], cutoff: float) -> set[str]:
    from stardag.registry import _gcreads

    tasks = {c.key for c in batch if c.kind == "record"}
    tasks |= {owner for c in batch for owner in c.owners}
    digests = {c.key for c in batch if c.kind == "blob"}
    recent_tasks = {k for k, t in _gcreads.last_used_tasks(conn, tasks).items() if t >= cutoff}
    recent = {k for k, t in _gcreads.last_used_digests(conn, digests).items() if t >= cutoff}
    recent |= recent_tasks
    recent |= {c.key for c in batch if recent_tasks.intersection(c.owners)}
    return recent


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
    from stardag.registry import _gcreads, _gcrows
    from stardag.registry._addons import ensure

    names = _gcreads.store_names(store.url, store.backend.url)
    now = time.time()

    def mark(conn: Connection) -> None:
        keys = set(_gcrows.outputs_of_digests(conn, blobs, names)) | inline
        _gcrows.mark_deleted(conn, keys, "gc", store.url, now)

    ensure(registry)
    registry.write(mark)
