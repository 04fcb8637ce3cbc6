"""The store page's gc preview: `stardag gc`'s dry run under the default policy, off-request.

Marking walks every action record and blob of a store, which for a big store takes
far longer than a page may wait. So the first request starts the mark on a
background thread and answers "running"; the page asks again until the result is
"ready", which is kept for `FRESH_SECONDS` and then recomputed on the next request.
Invariant: this only ever marks and dry-runs (`sweep(apply=False)`); nothing is
deleted and no registry row is written, whatever is asked.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from stardag._errors import NoGcRootsError, StardagError
from stardag.maintenance import _settings
from stardag.maintenance._gc import DEFAULT_GRACE, GcRoots, mark
from stardag.maintenance._sweep import sweep
from stardag.registry import Registry
from stardag.store._store import Store

FRESH_SECONDS = 60.0


@dataclass
class GcView:
    """The state of the preview: idle, running, ready (with `result`) or failed (`error`)."""

    state: str = "idle"
    started: float | None = None
    finished: float | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class GcPreviewer:
    """Computes and caches the gc dry run of one store, one mark at a time."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._lock = threading.Lock()
        self._view = GcView()

    def view(self, refresh: bool = False) -> GcView:
        """The preview as it stands; starts a mark when none is fresh (or `refresh`)."""
        with self._lock:
            view = self._view
            stale = view.finished is not None and time.time() - view.finished > FRESH_SECONDS
            if view.state != "running" and (view.state == "idle" or stale or refresh):
                started = time.time()
                self._view = GcView(state="running", started=started)
                worker = threading.Thread(
                    target=self._run, args=(started,), name="stardag-ui-gc", daemon=True
                )
                worker.start()
            return self._view

    def _run(self, started: float) -> None:
        try:
            result = preview(self.store, self.registry)
            done = GcView("ready", started, time.time(), result)
        except StardagError as exc:
            done = GcView("failed", started, time.time(), error=str(exc))
        with self._lock:
            self._view = done


def policy() -> tuple[GcRoots, float, str]:
    """The default policy `stardag gc` applies: roots from the settings, and the grace."""
    roots = GcRoots(
        keep_last=_settings.gc_keep_last(),
        keep_since=_settings.gc_duration(_settings.GC_KEEP_SINCE),
    )
    grace = _settings.gc_duration(_settings.GC_GRACE)
    grace = DEFAULT_GRACE if grace is None else grace
    parts = ["pins"]
    if roots.keep_last is not None:
        parts.append(f"the last {roots.keep_last} builds ({_settings.GC_KEEP_LAST})")
    if roots.keep_since is not None:
        parts.append(f"builds of the last {roots.keep_since:g} s ({_settings.GC_KEEP_SINCE})")
    parts.append(f"anything used within {grace:g} s")
    return roots, grace, "keeps " + ", ".join(parts)


def preview(store: Store, registry: Registry) -> dict[str, Any]:
    """What `stardag gc` would delete under the default policy, and why the rest is kept."""
    roots, grace, described = policy()
    on_disk = _on_disk(store)
    found: dict[str, Any] = {"store": store.url, "policy": described, **on_disk}
    try:
        plan = mark(store, registry, roots, grace=grace)
    except NoGcRootsError as exc:
        return found | {"refused": str(exc)}
    result = sweep(plan, registry, apply=False)
    families = [
        {"family": name, "count": count, "bytes": size}
        for name, (count, size) in result.by_family().items()
    ]
    return found | {
        "refused": None,
        "records": result.count("record"),
        "blobs": result.count("blob"),
        "bytes": result.freed,
        "by_family": families,
        "kept": plan.kept_by_reason(),
    }


def _on_disk(store: Store) -> dict[str, int]:
    count = size = 0
    for digest in store.iter_blobs():
        try:
            size += store.stat_blob(digest).size
        except StardagError:
            continue  # deleted since the listing
        count += 1
    return {"blobs_on_disk": count, "bytes_on_disk": size}
