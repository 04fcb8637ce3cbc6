"""Sharing outputs through a remote cache: push, pull and read-through.

A remote is a store root on another URL with the same layout (blobs plus one
action record per task id), so it describes itself: no server, no index.

Invariants (each has a test in tests/remote/):

- Blobs first, records last: a record is put only after every blob its output
  needs is stored on the other side, so a push cut off at any point leaves at
  worst orphan blobs, never a record that points at a missing blob.
- Every downloaded blob is decompressed and hashed as it streams and published
  locally only if it matches its digest (`Store.copy_blob`); every downloaded
  record is validated (`ActionRecord.from_json`: schema, id and digest formats, so
  no path can leave the store) and its spec must hash to its task id.
- Idempotent: only blobs and records the other side lacks are sent (batched
  existence checks), so a second push or pull transfers nothing.
- Signed: a push signs each record it puts with this machine's key (`_signatures`); a
  pull or read-through uses a remote's record only if a key this machine trusts
  signed it, unless the remote is marked trusted. An unsigned or wrongly signed record
  is reported and skipped, like a missing one.
- A pickled output (unpickling runs code) is fetched only from a trusted remote.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stardag import _config, _hashing
from stardag._errors import (
    BackendError,
    BlobNotFoundError,
    CorruptBlobError,
    InvalidRecordError,
    RemoteError,
    StoreError,
    UntrustedRecordError,
    UntrustedRemoteError,
)
from stardag.remote import _config as _remotes_config
from stardag.remote import _keys, _outages
from stardag.remote._config import Remote
from stardag.remote._signatures import read_trusted, signature_file
from stardag.store._store import ActionRecord, Store, record_path, signature_path, store_for

if TYPE_CHECKING:
    from stardag.registry import Registry
    from stardag.task._base import BaseTask

__all__ = [
    "PullReport",
    "PushReport",
    "fetch_into_local",
    "pull",
    "push",
]

logger = logging.getLogger("stardag.remote")

PICKLED_SERIALIZERS = frozenset({"pickle"})  # loading these runs code from the blob
THREADS = 8  # concurrent blob transfers


@dataclass(frozen=True)
class PushReport:
    """What a push sent: counts, and the closure's task ids it had no output for."""

    remote: str
    tasks: int = 0  # action records in the closure (present locally)
    blobs_sent: int = 0
    bytes_sent: int = 0
    records_sent: int = 0
    missing: tuple[str, ...] = ()  # upstream task ids with no complete output locally


@dataclass(frozen=True)
class PullReport:
    """What a pull fetched: counts, and the closure's task ids the remote had no record of."""

    remote: str
    tasks: int = 0
    blobs_fetched: int = 0
    bytes_fetched: int = 0
    records_fetched: int = 0
    missing: tuple[str, ...] = ()
    untrusted: tuple[str, ...] = ()  # upstream task ids whose records no trusted key signed
    records: tuple[ActionRecord, ...] = field(default=(), repr=False)


# -- the closure: records from a root down through requires and dynamic ---------------------
def closure(
    store: Store,
    roots: Sequence[str],
    get: Callable[[str], ActionRecord | None] | None = None,
) -> tuple[list[ActionRecord], list[str]]:
    """The records reachable from `roots` in `store`, upstream first, and the ids it lacks.

    A missing root is left to the caller; a missing upstream record is reported, not
    an error (an intermediate output may have been collected; the root still stands).
    `get` reads one record (default: `store.get_record`; None counts as missing).
    """
    get = get or store.get_record
    records: dict[str, ActionRecord] = {}
    missing: list[str] = []
    frontier = list(dict.fromkeys(roots))
    seen = set(frontier)
    with ThreadPoolExecutor(THREADS) as pool:
        while frontier:
            found = list(pool.map(get, frontier))
            following = []
            for task_id, record in zip(frontier, found, strict=True):
                if record is None:
                    missing.append(task_id)
                    continue
                records[task_id] = record
                for dep in (*record.requires, *record.dynamic):
                    if dep not in seen:
                        seen.add(dep)
                        following.append(dep)
            frontier = following
    return _upstream_first(records), missing


def _upstream_first(records: dict[str, ActionRecord]) -> list[ActionRecord]:
    """Records ordered dependencies first. Records may come from anywhere, so a cycle
    among them (which honest task ids cannot form) is cut where it closes, not followed."""
    order: list[ActionRecord] = []
    state: dict[str, bool] = {}  # task id -> done (False: on the current path)
    for root in records:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            task_id, expanded = stack.pop()
            if expanded:
                state[task_id] = True
                order.append(records[task_id])
                continue
            if task_id in state or task_id not in records:
                continue  # done, on the path (a cycle), or not here
            state[task_id] = False
            stack.append((task_id, True))
            record = records[task_id]
            stack.extend((dep, False) for dep in (*record.requires, *record.dynamic))
    return order


# -- push ----------------------------------------------------------------------------------
def push(
    tasks: Iterable[BaseTask | str] | None = None,
    *,
    remote: str | None = None,
    local: Store | str | None = None,
) -> PushReport:
    """Upload the closure of `tasks` (tasks or ids; None: every local record) to a remote.

    Only what the remote lacks is sent: blobs first, then records, upstream first.
    Raises `RemoteError` if a named task has no output here, or if the remote fails
    part way (what was sent stays; pushing again resumes).
    """
    target = _remotes_config.resolve(remote)
    source = _local_store(local)
    into = store_for(target.url)
    roots = list(source.iter_records()) if tasks is None else [_id_of(t) for t in tasks]
    records, missing = closure(source, roots)
    _check_roots_present(roots, missing, f"the local store {source.url}", target)
    records = [r for r in records if source.is_complete(r.task_id)]
    try:
        blobs, size = _send_blobs(source, into, records)
        sent = _send_records(into, records)
    except BackendError as exc:
        raise _remote_failed(target, "push to", exc) from exc
    return PushReport(target.name, len(records), blobs, size, sent, tuple(missing))


def _send_blobs(source: Store, into: Store, records: list[ActionRecord]) -> tuple[int, int]:
    needed = list(dict.fromkeys(d for r in records for d in source.required_blobs(r)))
    present = into.has_blobs(needed)
    todo = [d for d in needed if d not in present]
    sizes = _claimed_sizes(records)  # each copy is checked, and stops soon past its size
    with ThreadPoolExecutor(THREADS) as pool:
        copied = list(pool.map(lambda d: source.copy_blob(d, into, sizes.get(d)), todo))
    size = sum(source.stat_blob(d).size for d, c in zip(todo, copied, strict=True) if c)
    return sum(copied), size


def _send_records(into: Store, records: list[ActionRecord]) -> int:
    # Only after every blob is stored there: a record never points at a missing blob.
    # A record there without a signature (an older push, or planted) is replaced by ours.
    paths = [(record_path(r.task_id), signature_path(r.task_id)) for r in records]
    present = into.backend.exists_many([p for pair in paths for p in pair])
    sent = 0
    for record, (path, signature) in zip(records, paths, strict=True):
        if path not in present or signature not in present:
            data = record.to_json()  # the very bytes put_record writes
            into.backend.put_bytes(signature, signature_file(record.task_id, data))
            into.put_record(record)  # checks the blob is there first
            sent += 1
    return sent


# -- pull and read-through ---------------------------------------------------------------------
def pull(
    tasks: Iterable[BaseTask | str],
    *,
    remote: str | None = None,
    local: Store | str | None = None,
    registry: Registry | str | None = None,
    record: bool = True,
) -> PullReport:
    """Download the closure of `tasks` from a remote, verified, and record its lineage.

    Each blob is checked against its digest before it appears locally; records are
    validated and published after their blobs. With `record`, the pulled tasks,
    their lineage edges and outputs go into the registry (`registry`: default one).
    Raises `RemoteError` if the remote has no record of a named task.
    """
    source = _remotes_config.resolve(remote)
    into = _local_store(local)
    roots = [_id_of(task) for task in tasks]
    report = _fetch(source, store_for(source.url), into, roots, whole_closure=True)
    if record and report.records:
        from stardag.registry._fetches import record_pull

        record_pull(registry, report.records, into, source.url)
    return report


def fetch_into_local(task: BaseTask) -> str | None:
    """Read-through: fetch a task missing locally from the active remote; its URL, or None.

    A cheap no-op when no remote is configured. A remote that does not answer is
    logged and skipped for a while (the task is then computed). What a remote holds is
    used only if it passes every check (a valid record of this very task, with this
    task's serializer, a spec that hashes to its id, no pickle from an untrusted
    remote, blobs that match their digests); anything else is reported (logged) and
    skipped, and the task is computed here instead.
    """
    remote = _remotes_config.active()
    if remote is None or _outages.is_down(remote.name, remote.url):
        return None
    local = task.target().store  # type: ignore[attr-defined]  # a store-backed task
    source = store_for(remote.url)
    if source.url == local.url:
        return None
    expected = getattr(type(task), "__stardag_serializer__", None)
    try:
        report = _fetch(remote, source, local, [task.id], whole_closure=False, serializer=expected)
    except CorruptBlobError as exc:  # what it held there is damaged: compute it here
        _report_once(remote, task.id, f"{exc}; computing task {task.id} here instead")
        return None
    except RemoteError as exc:  # junk, untrusted, or the remote is down
        if isinstance(exc.__cause__, BlobNotFoundError):
            return None  # a record whose blob is gone there: not on the remote, compute it
        if isinstance(exc.__cause__, BackendError):
            _outages.note_down(remote.url, str(exc.__cause__))
            logger.warning(
                "remote %s did not answer, computing locally (and skipping it for %g s, in "
                "other processes too): %s",
                remote.name,
                _outages.DOWN_SECONDS,
                exc,
            )
            return None
        _report_once(remote, task.id, f"{exc}; computing task {task.id} here instead")
        return None
    return remote.url if report.records else None


def _report_once(remote: Remote, task_id: str, message: str) -> None:
    """Log a warning about one remote's record of one task, once per process."""
    key = (remote.url, task_id, message)
    with _REPORTED_LOCK:
        if key in _REPORTED:
            return
        _REPORTED.add(key)
    logger.warning("%s", message)


_REPORTED: set[tuple[str, str, str]] = set()
_REPORTED_LOCK = threading.Lock()


def _fetch(
    remote: Remote,
    source: Store,
    into: Store,
    roots: list[str],
    *,
    whole_closure: bool,
    serializer: Any = None,
) -> PullReport:
    keys = [] if remote.trusted else _keys.trusted_keys()
    untrusted: dict[str, UntrustedRecordError] = {}

    def get(task_id: str) -> ActionRecord | None:
        try:
            return read_trusted(remote, source, task_id, keys)
        except UntrustedRecordError as exc:
            if not whole_closure:
                raise
            untrusted[task_id] = exc  # skipped like a missing record; reported below
            return None

    try:
        if whole_closure:
            records, missing = closure(source, roots, get)
            _check_trusted(remote, roots, missing, untrusted)
            _check_roots_present(roots, missing, f"remote {remote.name}", remote)
        else:
            found = get(roots[0])
            records, missing = ([found] if found else []), []
        for record in records:
            _check_record(record, remote)
            if serializer is not None and record.serializer != serializer.name:
                raise _junk(
                    remote,
                    record.task_id,
                    f"is stored with the {record.serializer} serializer, "
                    f"not the task's own {serializer.name}",
                )
        records = [r for r in records if not into.is_complete(r.task_id)]
        blobs, size = _get_blobs(source, into, records)
        for record in records:
            into.put_record(record)  # upstream first; each after its blobs
    except BackendError as exc:
        raise _remote_failed(remote, "fetch from", exc) from exc
    except BlobNotFoundError as exc:
        raise RemoteError(
            f"remote {remote.name} has the action record of task {exc.task_id or '?'} but not "
            f"blob {exc.digest}; push it again from a machine that has it",
            remote=remote.name,
            task_id=exc.task_id,
            digest=exc.digest,
        ) from exc
    except InvalidRecordError as exc:
        raise _junk(remote, exc.task_id, f"is not a valid action record ({exc})") from exc
    except CorruptBlobError as exc:
        raise CorruptBlobError(  # a CorruptBlobError still, with what helps for a remote
            f"remote {remote.name} ({remote.url}) holds a corrupt copy of blob {exc.digest}: "
            f"{exc.why}. Nothing of it was fetched and the local store is fine; push the task "
            f"again from a machine whose copy is good (`stardag push TASK --remote "
            f"{_name_for(remote)}`), which replaces the damaged copy",
            digest=exc.digest,
            task_id=exc.task_id,
            why=exc.why,
        ) from exc
    return PullReport(
        remote.name,
        len(records),
        blobs,
        size,
        len(records),
        tuple(missing),
        tuple(untrusted),
        tuple(records),
    )


def _check_trusted(
    remote: Remote, roots: list[str], missing: list[str], untrusted: dict[str, UntrustedRecordError]
) -> None:
    """A root whose record no trusted key signed is an error; an upstream one is reported
    (once) and skipped: it is not fetched, nor is anything only it leads to."""
    for root in roots:
        if root in untrusted:
            raise untrusted[root]
    for task_id, exc in untrusted.items():
        _report_once(remote, task_id, f"{exc}; pulling the rest")
    missing[:] = [m for m in missing if m not in untrusted]


def _name_for(remote: Remote) -> str:
    """What names the remote for `--remote`: its configured name, or its URL."""
    return remote.url if remote.name == remote.url else remote.name


def _junk(remote: Remote, task_id: str | None, what: str) -> RemoteError:
    """A remote's record that fails a check: nothing of it is used."""
    return RemoteError(
        f"remote {remote.name}: the action record of task {task_id or '?'} {what}; "
        "it was not fetched",
        remote=remote.name,
        task_id=task_id,
    )


def _get_blobs(source: Store, into: Store, records: list[ActionRecord]) -> tuple[int, int]:
    needed = list(dict.fromkeys(d for r in records for d in source.required_blobs(r)))
    present = into.has_blobs(needed)
    todo = [d for d in needed if d not in present]
    sizes = _claimed_sizes(records)  # each copy is checked, and stops soon past its size
    with ThreadPoolExecutor(THREADS) as pool:
        copied = list(pool.map(lambda d: source.copy_blob(d, into, sizes.get(d)), todo))
    size = sum(into.stat_blob(d).size for d, c in zip(todo, copied, strict=True) if c)
    return sum(copied), size


def _claimed_sizes(records: list[ActionRecord]) -> dict[str, int]:
    """Blob digest -> the raw size the record that names it claims."""
    return {r.digest: r.size_raw for r in records if r.inline is None}


def _check_record(record: ActionRecord, remote: Remote) -> None:
    """Beyond `from_json`'s checks: the spec hashes to the id; pickle only if trusted."""
    if _hashing.task_id_of(record.spec) != record.task_id:
        raise RemoteError(
            f"remote {remote.name}: the action record of task {record.task_id} holds a spec "
            "that does not hash to its task id; it was not fetched",
            remote=remote.name,
            task_id=record.task_id,
        )
    if record.serializer in PICKLED_SERIALIZERS and not remote.trusted:
        raise UntrustedRemoteError(
            f"task {record.task_id}'s output on remote {remote.name} is pickled, and loading a "
            "pickle runs code; it was not fetched. If you trust everyone who can write to "
            f"{remote.url}, mark it trusted: `stardag remote add "
            f"{'NAME' if remote.name == remote.url else remote.name} {remote.url} --trusted`",
            remote=remote.name,
            task_id=record.task_id,
            digest=record.digest,
        )


# -- write-through ------------------------------------------------------------------------------
# -- helpers ---------------------------------------------------------------------------------
def _local_store(local: Store | str | None) -> Store:
    if isinstance(local, Store):
        return local
    return store_for(local or _config.target_root())


def _id_of(task: Any) -> str:
    if isinstance(task, str):
        if not _hashing.is_hex_key(task):
            raise RemoteError(f"{task!r} is not a task id (64 lowercase hex characters)")
        return task
    return str(task.id)


def _check_roots_present(roots: list[str], missing: list[str], where: str, remote: Remote) -> None:
    absent = [r for r in roots if r in missing]
    if absent:
        raise RemoteError(
            f"{where} has no output of task {absent[0]}"
            + (f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""),
            remote=remote.name,
            task_id=absent[0],
        )
    missing[:] = [m for m in missing if m not in set(roots)]


def _remote_failed(remote: Remote, what: str, exc: StoreError) -> RemoteError:
    return RemoteError(
        f"{what} remote {remote.name} ({remote.url}) failed: {exc}. Nothing that was sent "
        "points at a missing blob; run it again to resume",
        remote=remote.name,
        task_id=exc.task_id,
        digest=exc.digest,
    )
