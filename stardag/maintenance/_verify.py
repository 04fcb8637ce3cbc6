"""Verify a store and its registry: every blob, every action record, every output row.

Checks, each reported as a `Finding` of one `Kind`, with the task ids and digest:

- every blob is a whole run of zstd frames whose bytes hash to its name
  (`corrupt-frame`, `truncated-frame`, `digest-mismatch`);
- every action record parses, its spec hashes to its task id, and every blob it
  needs is stored (`invalid-record`, `spec-mismatch`, `missing-blob`);
- every current output row of the registry for this store still has its bytes
  (`output-missing`), and every blob is recorded by something (`unrecorded-blob`);
- temp files older than the grace period were left by a crashed write (`orphan-temp`);
- every checkout of a directory output of this store (under `$STARDAG_HOME/checkouts`)
  still holds exactly its files, each re-hashed (`checkout-modified`).

`unrecorded-blob` and `orphan-temp` are warnings (garbage, not damage: gc and
`--repair` clear them); everything else is an error. `repair=True` deletes bad
blobs and the action records that need them (their tasks rebuild next time, and
the registry marks those outputs deleted), deletes invalid records, and removes
orphan temp files and modified checkouts (checked out again on next use).
`sample` checks a random fraction of blobs, records and rows.

Blobs are decoded and hashed on a few threads at once (zstd and blake3 let go of
the interpreter lock on large buffers); findings keep the order of the digests.
Each record is read once: an output row whose bytes live inside a record checked
here is judged by that record, not by reading it again. Every record of a local store
is read and hashed every time; one whose exact bytes an earlier verify checked whole
(the record index, `stardag.store._index`) is not parsed and checked again.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stardag import _hashing
from stardag._errors import BlobNotFoundError, CorruptBlobError, InvalidRecordError, StardagError
from stardag.maintenance import _repair
from stardag.maintenance._bulk import collector_paused
from stardag.maintenance._findings import Finding, Kind
from stardag.store._backends import LocalBackend
from stardag.store._blob import STEP
from stardag.store._directory import checkout_changes, checkouts_root
from stardag.store._frames import FrameDecoder, FrameError
from stardag.store._index import RecordFacts, RecordIndex, family_of, read_file, read_files
from stardag.store._manifest import Manifest
from stardag.store._record import ActionRecord
from stardag.store._store import DIRECTORY_SERIALIZER, Store, blob_path, record_path

if TYPE_CHECKING:
    from stardag.registry import Registry
    from stardag.registry._gcreads import Reads

DEFAULT_GRACE = 3600.0
TMP = "tmp"
HASH_THREADS = 4  # blobs decoded and hashed at once


@dataclass
class VerifyReport:
    """What `verify` checked and found."""

    store: str
    sample: float | None = None
    blobs: int = 0
    records: int = 0
    outputs: int = 0
    temp_files: int = 0
    checkouts: int = 0  # checkouts of directory outputs re-hashed
    registry: bool = False
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Findings that are damage."""
        return [f for f in self.findings if not f.kind.is_warning]

    @property
    def warnings(self) -> list[Finding]:
        """Findings that are garbage."""
        return [f for f in self.findings if f.kind.is_warning]

    @property
    def ok(self) -> bool:
        """Whether nothing is damaged (warnings allowed)."""
        return not self.errors

    def by_kind(self) -> dict[str, int]:
        """How many findings of each kind."""
        return dict(Counter(f.kind.value for f in self.findings))


def check_blob(store: Store, digest: str) -> tuple[Kind, str] | None:
    """Decode and hash one stored blob; the kind of damage and a detail, or None if sound."""
    try:
        raw = store.backend.open_read(blob_path(digest))
    except FileNotFoundError:
        return Kind.MISSING_BLOB, "the blob is gone"
    hasher = _hashing.new_hasher()
    decoder = FrameDecoder(hasher.update)  # hashed piece by piece: a bomb never sits whole
    try:
        with raw:
            while chunk := raw.read(STEP):
                decoder.feed(chunk)
        decoder.finish()
    except FrameError as exc:
        return (Kind.TRUNCATED_FRAME if exc.truncated else Kind.CORRUPT_FRAME), str(exc)
    actual = hasher.hexdigest()
    if actual != digest:
        return Kind.DIGEST_MISMATCH, f"its bytes hash to {actual}"
    return None


def verify(
    store: Store,
    registry: Reads | None = None,
    *,
    sample: float | None = None,
    repair: bool = False,
    grace: float = DEFAULT_GRACE,
    seed: int | None = None,
) -> VerifyReport:
    """Check `store` (and its rows in `registry`); with `repair`, fix what can be fixed.

    Args:
        store: the store to check.
        registry: the registry whose output rows for this store are checked too (a
            `_lite` one for reading is opened whole by `_db` to repair).
        sample: a fraction in (0, 1]: check that share of blobs, records and rows.
        repair: delete damaged blobs and the records that need them, invalid records
            and orphan temp files; mark the registry's lost outputs deleted.
        grace: temp files and unrecorded blobs younger than this many seconds belong
            to writes that may still be running, and are left alone.
        seed: seed of the random sample (for a repeatable sample).
    """
    run = _Verify(store, registry, sample, grace, random.Random(seed))
    with collector_paused():
        run.check()
    if repair:
        _repair.repair(store, _writable(registry), run.report.findings)
    return run.report


def _writable(registry: Reads | None) -> Registry | None:
    """`registry` as `_db` opens it: a repair writes through SQLAlchemy."""
    from stardag.registry._lite import LiteRegistry

    if not isinstance(registry, LiteRegistry):
        return registry
    from stardag.registry._db import open_registry

    return open_registry(registry.url)


class _Verify:
    def __init__(
        self,
        store: Store,
        registry: Reads | None,
        sample: float | None,
        grace: float,
        rng: random.Random,
    ) -> None:
        if sample is not None and not 0 < sample <= 1:
            raise ValueError(f"sample must be a fraction in (0, 1], not {sample}")
        self.store = store
        self.registry = registry
        self.sample = sample
        self.grace = grace
        self.rng = rng
        self.now = time.time()
        self.report = VerifyReport(store.url, sample=sample, registry=registry is not None)
        self.outputs: dict[
            str, tuple[str, bool]
        ] = {}  # task id -> (digest, inline) of sound records
        self.directories: dict[str, ActionRecord] = {}  # digest -> a directory output's record
        self.needed: dict[str, set[str]] = {}  # digest -> task ids whose output needs it
        self.blobs: set[str] = set()
        self.damaged: set[str] = set()
        self.invalid: set[str] = set()  # task ids whose record is reported already

    def _pick(self, items: Iterable[str]) -> list[str]:
        found = sorted(items)
        if self.sample is None:
            return found
        return sorted(self.rng.sample(found, math.ceil(self.sample * len(found))))

    def add(self, finding: Finding) -> None:
        self.report.findings.append(finding)

    def check(self) -> None:
        self.blobs = set(self.store.iter_blobs())
        records: list[tuple[str, bytes | None]]
        backend = self.store.backend
        if self.sample is None and isinstance(backend, LocalBackend):
            self._check_local_records(backend)
        else:
            if self.sample is None:  # every record, listed and read in one pass
                records = sorted((t, data) for t, _stat, data in self.store.scan_records())
            else:
                records = list(self._read(self._pick(self.store.iter_records())))
            self._check_records(records)
        self._check_blobs(self._pick(self.blobs))
        self._check_needed()
        rows = self._check_registry()
        if self.sample is None:
            self._check_unrecorded(rows)
        self._check_temp()
        self._check_checkouts()

    # -- records -----------------------------------------------------------------------------
    def _read(self, task_ids: Sequence[str]) -> Iterator[tuple[str, bytes | None]]:
        for task_id in task_ids:
            try:
                yield task_id, self.store.backend.read_bytes(record_path(task_id))
            except FileNotFoundError:
                yield task_id, None  # deleted since the listing

    def _check_records(self, records: Iterable[tuple[str, bytes | None]]) -> None:
        for task_id, data in records:
            self.report.records += 1
            record = None if data is None else self._record(task_id, data)
            if record is not None:
                self._sound(task_id, record)

    def _check_local_records(self, backend: LocalBackend) -> None:
        """Every record of a local store read and hashed; those whose exact bytes a
        verify checked whole before (the record index) are not parsed again."""
        index = RecordIndex(backend, self.store.file_time())
        listed = []
        for task_id, data in read_files(backend, index.rows):  # in task id order
            listed.append(task_id)
            self.report.records += 1
            sound = _hashing.digest_bytes(data)
            facts = index.vouched(task_id, sound)
            if facts is not None:
                self._note(task_id, facts.digest, facts.inline, facts.blobs)
                continue
            record = self._record(task_id, data)
            if record is None:
                continue
            blobs = self._sound(task_id, record)
            if record.serializer != DIRECTORY_SERIALIZER:
                _cache(index, backend, task_id, data, _facts(record, blobs))
        index.save(listed)

    def _sound(self, task_id: str, record: ActionRecord) -> list[str]:
        """Note what a sound record says; the blobs its output needs."""
        if record.serializer == DIRECTORY_SERIALIZER:
            self.directories[record.digest] = record
        blobs = self._required(record)
        self._note(task_id, record.digest, record.inline is not None, blobs)
        return blobs

    def _note(self, task_id: str, digest: str, inline: bool, blobs: list[str]) -> None:
        self.outputs[task_id] = (digest, inline)
        for blob in blobs:
            self.needed.setdefault(blob, set()).add(task_id)

    def _record(self, task_id: str, data: bytes) -> ActionRecord | None:
        try:
            record = ActionRecord.from_json(data, task_id)
        except InvalidRecordError as exc:
            self.invalid.add(task_id)
            path = record_path(task_id)
            self.add(Finding(Kind.INVALID_RECORD, path, str(exc), task_ids=(task_id,)))
            return None
        actual = _hashing.task_id_of(record.spec)
        if actual != task_id:
            self.invalid.add(task_id)
            detail = f"its spec hashes to {actual}, not to the task id it is stored under"
            path = record_path(task_id)
            self.add(Finding(Kind.SPEC_MISMATCH, path, detail, record.digest, (task_id,)))
            return None
        if record.inline is not None:
            return self._check_inline(record)
        return record

    def _check_inline(self, record: ActionRecord) -> ActionRecord | None:
        try:
            self.store.read_output(record)
        except CorruptBlobError as exc:
            path = record_path(record.task_id)
            finding = Finding(
                Kind.DIGEST_MISMATCH, path, str(exc), record.digest, (record.task_id,)
            )
            self.add(finding)
            return None
        return record

    def _required(self, record: ActionRecord) -> list[str]:
        try:
            return self.store.required_blobs(record)
        except (BlobNotFoundError, CorruptBlobError):
            return [record.digest]  # a directory whose manifest is missing or damaged

    # -- blobs -------------------------------------------------------------------------------
    def _check_blobs(self, digests: Sequence[str]) -> None:
        if len(digests) > 1:
            with ThreadPoolExecutor(min(HASH_THREADS, len(digests))) as pool:
                results = list(pool.map(lambda d: check_blob(self.store, d), digests))
        else:
            results = [check_blob(self.store, d) for d in digests]
        for digest, found in zip(digests, results, strict=True):
            self.report.blobs += 1
            if found is None or found[0] is Kind.MISSING_BLOB:
                continue  # deleted since the listing: judged by the records that need it
            kind, detail = found
            self.damaged.add(digest)
            tasks = tuple(sorted(self.needed.get(digest, ())))
            self.add(Finding(kind, blob_path(digest), detail, digest, tasks))

    def _check_needed(self) -> None:
        for digest in sorted(set(self.needed) - self.blobs):
            if self.store.has_blob(digest):
                continue  # written since the listing
            tasks = tuple(sorted(self.needed[digest]))
            detail = f"needed by {len(tasks)} action record(s) but not stored"
            self.add(Finding(Kind.MISSING_BLOB, blob_path(digest), detail, digest, tasks))

    # -- registry ------------------------------------------------------------------------------
    def _check_registry(self) -> set[str]:
        """Check current output rows; returns every digest the registry records."""
        if self.registry is None:
            return set()
        from stardag.registry import _gcreads

        names = _gcreads.store_names(self.store.url, self.store.backend.url)
        rows = self.registry.read(lambda conn: _gcreads.output_keys(conn, names))
        latest: dict[str, tuple[str, str, float, bool]] = {}
        for row in rows:  # (task id, digest, created, deleted)
            known = latest.get(row[0])
            if known is None or row[2] > known[2]:
                latest[row[0]] = row
        current = sorted((t, d) for t, d, _created, deleted in latest.values() if not deleted)
        for task_id, digest in self._sampled_rows(current):
            self.report.outputs += 1
            if not self._present(task_id, digest):
                detail = "the registry's current output of this task is no longer in the store"
                path = blob_path(digest)
                self.add(Finding(Kind.OUTPUT_MISSING, path, detail, digest, (task_id,)))
        return {digest for _task, digest, _created, deleted in rows if not deleted}

    def _sampled_rows(self, rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if self.sample is None:
            return rows
        return self.rng.sample(rows, math.ceil(self.sample * len(rows)))

    def _present(self, task_id: str, digest: str) -> bool:
        if task_id in self.invalid or digest in self.blobs:
            return True  # a bad record is reported once, as itself
        if self.outputs.get(task_id) == (digest, True):
            return True  # inline in a record read (and checked) a moment ago
        return _repair.present(self.store, task_id, digest)

    def _check_unrecorded(self, recorded: set[str]) -> None:
        loose = self.blobs - set(self.needed) - recorded - self.damaged
        for digest in sorted(loose):
            if self._age(blob_path(digest)) < self.grace:
                continue
            detail = "no action record or registry output names it (gc removes it)"
            self.add(Finding(Kind.UNRECORDED_BLOB, blob_path(digest), detail, digest))

    # -- temp files ----------------------------------------------------------------------------
    def _check_temp(self) -> None:
        for path in sorted(self.store.backend.walk(TMP)):
            self.report.temp_files += 1
            age = self._age(path)
            if age >= self.grace:
                detail = f"a temp file {age / 3600:.1f} h old, left by a write that never finished"
                self.add(Finding(Kind.ORPHAN_TEMP, path, detail))

    # -- checkouts of directory outputs -------------------------------------------------------
    def _check_checkouts(self) -> None:
        root = checkouts_root()
        present = set(os.listdir(root)) if root.is_dir() else set()
        outputs = {d: r for d, r in self.directories.items() if d in present}
        for digest in sorted(outputs):
            self.report.checkouts += 1
            try:
                manifest = Manifest.from_json(self.store.read_output(outputs[digest]), digest)
            except StardagError:
                continue  # damaged: the record and blob checks report it
            changes = checkout_changes(root / digest, manifest)
            if changes:
                detail = "the checkout was changed: " + "; ".join(changes[:5])
                self.add(Finding(Kind.CHECKOUT_MODIFIED, str(root / digest), detail, digest))

    def _age(self, path: str) -> float:
        try:
            return self.now - self.store.backend.stat(path).mtime
        except FileNotFoundError:
            return 0.0


def _cache(
    index: RecordIndex, backend: LocalBackend, task_id: str, data: bytes, facts: RecordFacts
) -> None:
    """Cache the facts of a record checked whole, under the stat of its file, taken
    before a second read: only if that read gives the very bytes checked."""
    read = read_file(backend, task_id)
    if read is not None and read[1] == data:
        index.put(task_id, read[0], _hashing.digest_bytes(data), facts)


def _facts(record: ActionRecord, blobs: list[str]) -> RecordFacts:
    deps = record.requires + record.dynamic if record.dynamic else record.requires
    return RecordFacts(
        deps, blobs, family_of(record.spec), record.digest, record.inline is not None
    )
