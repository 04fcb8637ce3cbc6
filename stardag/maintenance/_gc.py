"""gc, the mark half: which action records and blobs are live, and why.

Roots are task ids: pins; the tasks of the last N builds (`keep_last`) and of
builds started within a duration (`keep_since`); tasks named by the caller; the
roots of builds still running. Live is the upstream closure of the roots
(dependencies from action records and from registry edges) and every blob the
live records need. Anything else written or used within the grace period (a
record or blob whose file is new, a task or digest with a recent run in the
registry: a cache hit is a run) is kept too, with its upstream. The rest are
candidates, which `_sweep.sweep` deletes after checking each one again.

A running build is protected whatever the grace: the period reaches back at least
to the start of the oldest build still running (`GcPlan.cutoff`), so everything it
wrote or reused (a cache hit refreshes the files' mtime) is kept, and the sweep keeps
anything written or reused since the mark (see `_sweep` and `stardag.store._lock`).

Marking deletes nothing; `GcPlan` says what would go (by task family) and why
the rest stays (by reason); `GcPlan.why(key)` gives the chain from a root.

At scale (100,000 records) the mark lists a local store's records with their stats and
reads only those its record index (`stardag.store._index`) has no entry for as the
files are now (other stores: each record once), and reads the registry's edges in one
query; the sweep re-checks every candidate's file and registry rows just before
deleting it, so what the mark saw is never the last word.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from stardag import _hashing
from stardag._errors import InvalidRecordError, NoGcRootsError, StoreError
from stardag.maintenance._bulk import collector_paused
from stardag.store._backends import LocalBackend
from stardag.store._index import (
    RecordFacts,
    RecordIndex,
    family_of,
    read_file,
    record_files,
    row_facts,
)
from stardag.store._record import ActionRecord
from stardag.store._store import (
    CLOCK_SLACK,
    DIRECTORY_SERIALIZER,
    Store,
    record_path,
)

if TYPE_CHECKING:
    from stardag.registry._gcreads import BuildRef, Conn, Reads

DEFAULT_GRACE = 3600.0
GRACE_REASON = "written or used within the grace period"
RUNNING = "running build"


@dataclass(frozen=True)
class GcRoots:
    """The kinds of root a gc keeps: pins always, and whatever else is stated."""

    keep_last: int | None = None
    keep_since: float | None = None  # seconds before now
    tasks: tuple[str, ...] = ()  # task ids
    pins: bool = True

    def stated(self) -> bool:
        """Whether any kind of root other than pins was given (`keep_last=0` is one)."""
        return self.keep_last is not None or self.keep_since is not None or bool(self.tasks)


class Candidate(NamedTuple):
    """A record or blob that nothing live needs: what gc would delete (a tuple: a dry
    run of a store where nothing is live makes one per record)."""

    kind: str  # "record" or "blob"
    key: str  # task id or digest
    size: int  # bytes it takes in the store
    family: str  # namespace.name of its task ("(unrecorded)" for a blob no record needs)
    owners: tuple[str, ...] = ()  # candidate task ids whose output needs this blob
    digest: str | None = None  # a record's output digest
    inline: bool = False  # a record whose output lives inside it


@dataclass
class GcPlan:
    """The result of marking: live roots and closure, kept reasons, and candidates."""

    store: Store
    grace: float
    marked: float
    running_since: float | None = None  # start of the oldest build still running
    stamp: float = float("-inf")  # the mark's start by the store's file clock (`file_time`)
    roots: dict[str, str] = field(default_factory=dict)  # task id -> why it is a root
    reached_from: dict[str, str | None] = field(default_factory=dict)  # live task -> parent
    live_blobs: dict[str, str] = field(default_factory=dict)  # digest -> live task needing it
    recent_blobs: set[str] = field(default_factory=set)
    records: list[Candidate] = field(default_factory=list)
    blobs: list[Candidate] = field(default_factory=list)
    families: dict[str, str] = field(default_factory=dict)  # task id -> namespace.name

    @property
    def cutoff(self) -> float:
        """What was written or used at or after this time is kept: grace, and running builds."""
        cutoff = self.marked - self.grace
        if self.running_since is None:
            return cutoff
        return min(cutoff, self.running_since - CLOCK_SLACK)

    def recheck_cutoff(self, files: bool) -> float:
        """Written or used at or after this is kept on re-check: within the grace period
        as of now, since the mark, or since the oldest running build began. `files`: for
        mtimes, so the mark by the store's file clock; else (the registry's times) by ours.
        """
        cutoff = min(time.time() - self.grace, self.stamp if files else self.marked)
        if self.running_since is None:
            return cutoff
        return min(cutoff, self.running_since - CLOCK_SLACK)

    @property
    def candidates(self) -> list[Candidate]:
        """Records first, then blobs: the order they are deleted in."""
        return [*self.records, *self.blobs]

    def kept_by_reason(self) -> dict[str, int]:
        """How many live records each root reason keeps (closure included), and recent blobs."""
        counts: Counter[str] = Counter()
        roots: dict[str, str] = {}  # task id -> its root, each chain walked once
        families, reasons = self.families, self.roots
        for task_id, parent in self.reached_from.items():
            if task_id in families:  # it has a record in this store
                root = task_id if parent is None else self._root_of(task_id, roots)
                counts[reasons[root]] += 1
        if self.recent_blobs:
            counts[f"blobs {GRACE_REASON}"] += len(self.recent_blobs)
        return dict(counts)

    def _root_of(self, task_id: str, known: dict[str, str]) -> str:
        path = []
        while task_id not in known and (parent := self.reached_from.get(task_id)) is not None:
            path.append(task_id)
            task_id = parent
        root = known.get(task_id, task_id)
        known.update(dict.fromkeys(path, root))
        return root

    def chain(self, task_id: str) -> list[str]:
        """Task ids from the root that keeps `task_id` alive down to it ([] if not live)."""
        if task_id not in self.reached_from:
            return []
        path = [task_id]
        while (parent := self.reached_from[path[-1]]) is not None:
            path.append(parent)
        return path[::-1]

    def why(self, key: str) -> list[str]:
        """Lines saying why a task id or blob digest is kept, or that it is not."""
        if key in self.live_blobs:
            owner = self.live_blobs[key]
            return [*self._chain_lines(owner), f"  needs blob {key}"]
        if key in self.reached_from:
            return self._chain_lines(key)
        if key in self.recent_blobs:
            return [f"blob {key}: {GRACE_REASON} ({_hours(self.grace)})"]
        if any(c.key == key for c in self.candidates):
            return [f"{key}: not reachable from any root; gc deletes it"]
        return [f"{key}: neither a task with a record nor a blob in {self.store.url}"]

    def _chain_lines(self, task_id: str) -> list[str]:
        path = self.chain(task_id)
        lines = [f"root {self._label(path[0])}: {self.roots[path[0]]}"]
        lines += [f"  needs {self._label(t)}" for t in path[1:]]
        return lines

    def _label(self, task_id: str) -> str:
        family = self.families.get(task_id)
        return f"{family} {task_id[:12]}" if family else task_id[:12]


def _hours(seconds: float) -> str:
    return f"grace {seconds / 3600:g} h" if seconds >= 3600 else f"grace {seconds:g} s"


def mark(
    store: Store,
    registry: Reads | None,
    roots: GcRoots,
    *,
    grace: float = DEFAULT_GRACE,
    now: float | None = None,
) -> GcPlan:
    """Compute the live set of `store` from `roots`; nothing is deleted.

    Raises `NoGcRootsError` when no root kind is stated and no pin exists.
    """
    now = time.time() if now is None else now
    plan = GcPlan(store=store, grace=grace, marked=now, stamp=store.file_time())
    pinned = _pinned(registry) if roots.pins else {}
    if not pinned and not roots.stated():  # running builds alone never make a gc safe
        raise NoGcRootsError(
            "gc needs roots to know what to keep, and none are given or configured: pin what "
            "matters (stardag pin NAME TASK), or pass --keep-last N, --keep-since 7d or "
            "task ids (or set STARDAG_GC_KEEP_LAST / STARDAG_GC_KEEP_SINCE)"
        )
    found, kept_builds = _roots(registry, roots, plan)
    plan.roots = found | pinned  # a pin names its reason first
    with collector_paused():
        walker = _Closure(store, registry, plan)
        walker.walk(list(plan.roots))
        recent = _recent_tasks(registry, plan, walker, kept_builds)
        for task_id in recent:
            plan.roots.setdefault(task_id, GRACE_REASON)
        walker.walk(recent)
        _candidates(store, registry, plan, walker, plan.cutoff)
    return plan


# -- roots -------------------------------------------------------------------------------------
def _pinned(registry: Reads | None) -> dict[str, str]:
    if registry is None:
        return {}
    from stardag.registry import _gcreads

    return {task_id: f"pin {name}" for name, task_id in registry.read(_gcreads.pins)}


def _roots(registry: Reads | None, roots: GcRoots, plan: GcPlan) -> tuple[dict[str, str], set[str]]:
    """Roots other than pins (kept builds, running builds, named tasks), and the ids of
    the builds kept (every task they ran or reused is a root)."""
    found: dict[str, str] = {}
    builds: set[str] = set()
    if registry is not None:
        since = None if roots.keep_since is None else plan.marked - roots.keep_since
        kept = registry.read(lambda conn: _build_roots(conn, roots, since))
        for build, why, task_ids in kept:
            builds.add(build.id)
            found |= {t: why for t in task_ids if t not in found}
            if why.startswith(RUNNING):
                plan.running_since = min(plan.running_since or build.started, build.started)
    for task_id in roots.tasks:
        found.setdefault(task_id, "named on the command line")
    return found, builds


def _build_roots(
    conn: Conn, roots: GcRoots, since: float | None
) -> list[tuple[BuildRef, str, list[str]]]:
    """(build, reason, task ids) per kept build: running ones still alive, and recent ones."""
    from stardag.registry import _gcreads

    kept = [(b, f"{RUNNING} {b.id[:8]}") for b in _gcreads.running_builds(conn) if _alive(b)]
    kept += [
        (b, _build_reason(b, roots)) for b in _gcreads.recent_builds(conn, roots.keep_last, since)
    ]
    ran = _gcreads.build_tasks(conn, list(dict.fromkeys(b.id for b, _ in kept)))
    return [(b, why, [*b.roots, *ran[b.id]]) for b, why in kept]


def _build_reason(build: BuildRef, roots: GcRoots) -> str:
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(build.started))
    which = f"one of the last {roots.keep_last} builds" if roots.keep_last else "a recent build"
    return f"build {build.id[:8]} of {started}, {which}"


def _alive(build: BuildRef) -> bool:
    """Whether a build marked running may really be running (unknowable on another host)."""
    if build.host != socket.gethostname():
        return True
    try:
        os.kill(build.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but belongs to another user
        return True
    return True


# -- the closure -------------------------------------------------------------------------------
class _Closure:
    """Walks dependencies down from roots, noting each live task's parent and blobs."""

    def __init__(self, store: Store, registry: Reads | None, plan: GcPlan) -> None:
        self.store = store
        self.registry = registry
        self.plan = plan
        self._facts: dict[str, RecordFacts | None] = {}
        self._families: dict[tuple[str, str], str] = {}  # one string per family
        self._edges: dict[str, list[str]] | None = None  # the registry's, read once
        # mtime and size of each record file, as listed (a local store); not the whole
        # stat result, ~0.5 KiB of objects a record (55 MB at 100,000 records)
        self.stats: dict[str, tuple[float, int]] = {}
        backend = store.backend
        if isinstance(backend, LocalBackend):
            self.all_records = self._list_local(backend)
        else:
            self.all_records = self._list_records()

    def _list_records(self) -> list[str]:
        """Every task id with a record, each read now (gc needs them all)."""
        task_ids = []
        for task_id, _stat, data in self.store.scan_records():
            task_ids.append(task_id)
            self._facts[task_id] = self._parse(task_id, data)[0]
        task_ids.sort()
        return task_ids

    def _list_local(self, backend: LocalBackend) -> list[str]:
        """Every task id with a record in a local store, with its file's stats; a record
        is read only if the record index has no entry for its file as it is now."""
        index = RecordIndex(backend, self.plan.stamp)
        for task_id, st in record_files(backend, index.rows):
            row = index.trusted(task_id, st)
            if row is not None:
                facts = row_facts(row)
            else:
                read = read_file(backend, task_id)
                if read is None:
                    continue  # deleted since the listing
                st, data = read
                facts, cacheable = self._parse(task_id, data)
                if cacheable:
                    index.put(task_id, st, _still_sound(index.sound(task_id), data), facts)
            self._facts[task_id] = facts
            self.stats[task_id] = (st.st_mtime, st.st_size)
        index.save(self.stats.keys())
        return sorted(self.stats)

    def _parse(self, task_id: str, data: bytes) -> tuple[RecordFacts | None, bool]:
        """What a stored record says (None if it is invalid), and whether the record
        index may keep that (not for a directory output: its manifest may be damaged)."""
        try:
            record = ActionRecord.from_json(data, task_id)
        except InvalidRecordError:
            return None, True
        return self._facts_of(record), record.serializer != DIRECTORY_SERIALIZER

    def mtime(self, task_id: str) -> float:
        """The mtime of a task's record file, as listed (a local store) or asked now."""
        stat = self.stats.get(task_id)
        return stat[0] if stat is not None else _mtime(self.store, record_path(task_id))

    def size(self, task_id: str) -> int:
        """The size of a task's record file, as listed (a local store) or asked now."""
        stat = self.stats.get(task_id)
        return stat[1] if stat is not None else _size(self.store, record_path(task_id))

    def facts(self, task_id: str) -> RecordFacts | None:
        """What the task's action record says (read once: listed records when listed);
        None if it has none or it is invalid (verify reports it; gc treats it as garbage)."""
        try:
            return self._facts[task_id]
        except KeyError:
            pass
        try:
            record = self.store.read_record(task_id)
        except InvalidRecordError:
            record = None
        found = None if record is None else self._facts_of(record)
        self._facts[task_id] = found
        return found

    def _facts_of(self, record: ActionRecord) -> RecordFacts:
        spec = record.spec
        key = (spec.get("namespace", ""), spec.get("name", "?"))
        try:
            name = self._families.get(key)
        except TypeError:  # not strings: no shared name
            name = family(record)
        else:
            if name is None:
                name = self._families[key] = family(record)
        deps = record.requires + record.dynamic if record.dynamic else record.requires
        blobs = self.required(record)
        return RecordFacts(deps, blobs, name, record.digest, record.inline is not None)

    def _registry_edges(self) -> dict[str, list[str]]:
        if self._edges is None:  # one pass over the table, not a query per frontier
            self._edges = {}
            if self.registry is not None:
                from stardag.registry import _gcreads

                self._edges = self.registry.read(_gcreads.all_edges)
        return self._edges

    def walk(self, start: Iterable[str]) -> None:
        """Add `start` and everything upstream of it to the live set."""
        reached = self.plan.reached_from
        families = self.plan.families
        live_blobs = self.plan.live_blobs
        frontier = [t for t in dict.fromkeys(start) if t not in reached]
        if not frontier:
            return
        edges = self._registry_edges()
        known = self._facts
        reached.update(dict.fromkeys(frontier))
        while frontier:
            upcoming = []
            for task_id in frontier:
                deps = edges.get(task_id)
                facts = known[task_id] if task_id in known else self.facts(task_id)
                if facts is not None:
                    families[task_id] = facts.family
                    for digest in facts.blobs:
                        live_blobs.setdefault(digest, task_id)
                    if deps is None or deps == facts.deps:  # the record and registry agree
                        deps = facts.deps
                    else:
                        deps = [*deps, *facts.deps]
                for dep in deps or ():
                    if dep not in reached:
                        reached[dep] = task_id
                        upcoming.append(dep)
            frontier = upcoming

    def required(self, record: ActionRecord) -> list[str]:
        """The blobs a record needs; a damaged directory manifest needs just itself."""
        try:
            return self.store.required_blobs(record)
        except StoreError:
            return [] if record.inline is not None else [record.digest]


def family(record: ActionRecord) -> str:
    """A task's family: `namespace.name`, or just the name without a namespace."""
    return family_of(record.spec)


def _still_sound(sound: str, data: bytes) -> str:
    """`sound` (the blake3 of bytes a verify checked whole) if `data` are those bytes."""
    return sound if sound and _hashing.digest_bytes(data) == sound else ""


# -- what is left ------------------------------------------------------------------------------
def _recent_tasks(
    registry: Reads | None, plan: GcPlan, walker: _Closure, kept_builds: set[str]
) -> list[str]:
    """Tasks used since the cutoff (registry runs) or whose record was written since.
    Runs and outputs of the kept builds are not asked for: their tasks are roots."""
    cutoff = plan.cutoff
    recent: set[str] = set()
    if registry is not None:
        from stardag.registry import _gcreads

        recent = registry.read(lambda conn: _gcreads.used_since(conn, cutoff, kept_builds))
    reached, stats = plan.reached_from, walker.stats
    for task_id in walker.all_records:
        if task_id in reached or task_id in recent:
            continue
        st = stats.get(task_id)
        if (st[0] if st is not None else walker.mtime(task_id)) >= cutoff:
            recent.add(task_id)
    return sorted(recent.difference(reached))


def _candidates(
    store: Store, registry: Reads | None, plan: GcPlan, walker: _Closure, cutoff: float
) -> None:
    owners: dict[str, list[str]] = {}
    for task_id in walker.all_records:
        if task_id not in plan.reached_from:
            plan.records.append(_record_candidate(store, walker, task_id, owners))
    loose = [d for d in store.iter_blobs() if d not in plan.live_blobs]
    used = _last_used(registry, loose)
    for digest in sorted(loose):
        try:
            stat = store.stat_blob(digest)
        except StoreError:
            continue  # deleted since the listing
        if stat.mtime >= cutoff or used.get(digest, float("-inf")) >= cutoff:
            plan.recent_blobs.add(digest)
            continue
        mine = tuple(owners.get(digest, ()))
        kind = plan.families.get(mine[0], "?") if mine else "(unrecorded)"
        plan.blobs.append(Candidate("blob", digest, stat.size, kind, owners=mine))


def _record_candidate(
    store: Store, walker: _Closure, task_id: str, owners: dict[str, list[str]]
) -> Candidate:
    facts = walker.facts(task_id)
    size = walker.size(task_id)
    if facts is None:
        return Candidate("record", task_id, size, "(invalid record)")
    walker.plan.families[task_id] = facts.family
    for digest in facts.blobs:
        owners.setdefault(digest, []).append(task_id)
    return Candidate(
        "record", task_id, size, facts.family, digest=facts.digest, inline=facts.inline
    )


def _last_used(registry: Reads | None, digests: list[str]) -> dict[str, float]:
    if registry is None or not digests:
        return {}
    from stardag.registry import _gcreads

    return registry.read(lambda conn: _gcreads.last_used_digests(conn, digests))


def _mtime(store: Store, path: str) -> float:
    try:
        return store.backend.stat(path).mtime
    except FileNotFoundError:
        return float("-inf")


def _size(store: Store, path: str) -> int:
    try:
        return store.backend.stat(path).size
    except FileNotFoundError:
        return 0
