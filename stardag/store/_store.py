"""The content-addressed store: zstd blobs named by blake3, and one action record per task.

Layout under a root (documented in docs/identity-and-storage.md):

    objects/<d[:2]>/<d[2:]>          zstd frames of the bytes whose blake3 is d (`_blob`)
    records/<id[:2]>/<id[2:]>.json   action record: spec, digest, serializer, sizes (`_record`)
    records/<id[:2]>/<id[2:]>.sig    its writers' signatures, on a remote (`stardag.remote`)
    tmp/<random>                     writes in progress (renamed away when complete)
    records.idx                      what each record says, cached for gc and verify (`_index`)

A remote cache is simply another `Store` on another URL with the same layout;
`has_blobs`, `copy_blob` and `required_blobs` are what moving outputs between two
stores needs.

Invariant, blob then record: a record is published only after its blob is whole
under its final name, so a record never points at a missing or partial blob
(unless the blob is deleted later, which makes the task incomplete, not broken).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stardag import _hashing
from stardag._errors import BlobNotFoundError, InvalidKeyError, StardagError
from stardag.store._backends import (
    PINNED_FSYNC,
    Backend,
    FileStat,
    LocalBackend,
    fsync_enabled,
)
from stardag.store._blob import (
    PINNED_COMPRESSION,
    SMALL_BLOB,
    STEP,
    UNCOMPRESSED,
    BlobInfo,
    BlobWriter,
    Compression,
    VerifyingCopier,
    VerifyingReader,
    corrupt,
    limit_for,
)
from stardag.store._frames import FrameError, decode_all
from stardag.store._fsspec import FsspecBackend
from stardag.store._index import scan_files
from stardag.store._lock import StoreLock
from stardag.store._manifest import Manifest
from stardag.store._record import ActionRecord, now_iso

__all__ = [
    "INLINE_MAX",
    "SMALL_BLOB",
    "ActionRecord",
    "BlobInfo",
    "Store",
    "blob_path",
    "now_iso",
    "record_path",
    "signature_path",
    "store_for",
]

OBJECTS = "objects"
RECORDS = "records"
# Outputs up to this size live inside their action record (base64), not in a blob file:
# one small file per task instead of two. The digest is still verified on every read.
INLINE_MAX = 4096
DIRECTORY_SERIALIZER = "directory"
# How far a file's mtime may lag the clock of the process that wrote it (coarse kernel
# clocks, servers' clocks): "written since t" is judged from t minus this, unless the
# store can stamp a file of its own to read its clock (`file_time`).
CLOCK_SLACK = 1.0
# How many recently read or written records a store keeps parsed (`_SeenRecords`).
SEEN_RECORDS = 1024


def blob_path(digest: str) -> str:
    """Where the blob with this digest lives, relative to the root."""
    _check_key(digest, "blob digest")
    return f"{OBJECTS}/{digest[:2]}/{digest[2:]}"


def digest_of_blob_path(path: str) -> str:
    """The digest a blob path names; `ValueError` if the path is not a blob path."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == OBJECTS and len(parts[1]) == 2:
        digest = parts[1] + parts[2]
        if _hashing.is_hex_key(digest):
            return digest
    raise ValueError(f"not a blob path: {path!r}")


def record_path(task_id: str) -> str:
    """Where the action record of this task id lives, relative to the root."""
    if type(task_id) is not str or _HEX_KEY(task_id) is None:  # (hot: checked inline)
        _check_key(task_id, "task id")
    return f"{RECORDS}/{task_id[:2]}/{task_id[2:]}.json"


_HEX_KEY = _hashing.HEX_KEY_FULLMATCH


def signature_path(task_id: str) -> str:
    """Where the signatures of a task's action record live, beside it (on a remote)."""
    _check_key(task_id, "task id")
    return f"{RECORDS}/{task_id[:2]}/{task_id[2:]}.sig"


def task_id_of_record_path(path: str) -> str:
    """The task id a record path names; `ValueError` if it is not a record path."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == RECORDS and parts[2].endswith(".json"):
        task_id = parts[1] + parts[2][: -len(".json")]
        if _hashing.is_hex_key(task_id):
            return task_id
    raise ValueError(f"not a record path: {path!r}")


def _check_key(key: str, what: str) -> None:
    if not _hashing.is_hex_key(key):
        raise InvalidKeyError(f"{key!r} is not a {what} (64 lowercase hex characters)")


def backend_for(url: str, storage_options: dict[str, Any] | None = None) -> Backend:
    """The backend for a root: a local path (or `file://`) or any fsspec URL."""
    if "://" not in url:
        return LocalBackend(url)
    if url.startswith("file://"):
        return LocalBackend(url[len("file://") :])
    return FsspecBackend(url, storage_options)


class Store:
    """Blobs and action records under one root URL.

    `storage_options` go to fsspec for non-local roots; `compression` fixes how new
    blobs are compressed (by default `STARDAG_ZSTD_LEVEL` / `STARDAG_ZSTD_THREADS`,
    read at each write).
    """

    def __init__(
        self,
        url: str,
        *,
        storage_options: dict[str, Any] | None = None,
        compression: Compression | None = None,
    ) -> None:
        self.url = url
        self.backend: Backend = backend_for(url, storage_options)
        self.compression = compression
        local = self.backend.root if isinstance(self.backend, LocalBackend) else None
        self.lock = StoreLock(local)  # builders' cache hits against gc's deletes
        self._seen = _SeenRecords()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def file_time(self) -> float:
        """Now as this store stamps files' mtimes (they may lag the process's clock)."""
        stamped = self.lock.file_time()
        return time.time() - CLOCK_SLACK if stamped is None else stamped

    # -- blobs -------------------------------------------------------------
    def writer(self, inline_max: int = -1) -> BlobWriter:
        """A sink for a new blob; call `finish()` (or `abort()`) when done.

        Up to `inline_max` bytes are not stored as a blob but returned in `BlobInfo.inline`
        (by default every write, even an empty one, becomes a blob).
        """
        settings = self.compression or Compression.from_env()
        return BlobWriter(self.backend, blob_path, settings, inline_max, self.lock.shared)

    def put_output(self, data: bytes, inline_max: int) -> BlobInfo:
        """An output's bytes already in memory, stored as `writer(inline_max)` would store
        them: up to `inline_max` bytes are only hashed and returned inline."""
        if len(data) <= inline_max:
            return BlobInfo(_hashing.digest_bytes(data), len(data), 0, UNCOMPRESSED, inline=data)
        writer = self.writer()
        writer.write(data)
        return writer.finish()

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store bytes as a blob."""
        writer = self.writer()
        writer.write(data)
        return writer.finish()

    def has_blob(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""
        return self.backend.exists(blob_path(digest))

    def has_blobs(self, digests: Collection[str]) -> set[str]:
        """Those of `digests` that are stored (batched where the backend can)."""
        paths = {blob_path(d): d for d in digests}
        return {paths[p] for p in self.backend.exists_many(list(paths))}

    def stat_blob(self, digest: str) -> FileStat:
        """Stored size and mtime (last write or reuse) of a blob."""
        try:
            return self.backend.stat(blob_path(digest))
        except FileNotFoundError:
            raise _missing(digest, None) from None

    def open_blob(
        self, digest: str, task_id: str | None = None, size: int | None = None
    ) -> VerifyingReader:
        """A verifying stream over a blob's uncompressed bytes.

        With `size` (the raw size its record claims), reading stops with a
        `CorruptBlobError` soon past it, however far the stored frames would inflate.
        """
        try:
            raw = self.backend.open_read(blob_path(digest))
        except FileNotFoundError:
            raise _missing(digest, task_id) from None
        threads = (self.compression or Compression.from_env()).threads
        return VerifyingReader(raw, digest, task_id, threads, size)

    def read_blob(self, digest: str, task_id: str | None = None, size: int | None = None) -> bytes:
        """A blob's uncompressed bytes, verified against the digest (`size`: as `open_blob`)."""
        try:
            raw = self.backend.read_bytes(blob_path(digest))
        except FileNotFoundError:
            raise _missing(digest, task_id) from None
        try:
            data = decode_all(raw, limit_for(size))
        except FrameError as exc:
            raise corrupt(digest, task_id, str(exc)) from None
        if _hashing.digest_bytes(data) != digest:
            raise corrupt(digest, task_id, "its bytes hash to another digest")
        return data

    def delete_blob(self, digest: str) -> None:
        """Remove a blob (records naming it become incomplete); a missing one is fine."""
        self.backend.delete(blob_path(digest))

    def copy_blob(self, digest: str, to: Store, size: int | None = None) -> bool:
        """Copy a blob into another store, verified before it appears there.

        The stored frame is copied as it is and checked (decompressed and hashed) as
        it streams past; only a whole, matching blob is published under its digest.
        Returns False when `to` already had it (nothing is copied). With `size` (the raw
        size its record claims) the check stops soon past it, as `open_blob` does.
        """
        path = blob_path(digest)
        with to.lock.shared():  # a blob found there is refreshed before gc can take it
            if to.backend.exists(path):
                to.backend.touch(path)
                return False
        try:
            source = self.backend.open_read(path)
        except FileNotFoundError:
            raise _missing(digest, None) from None
        staged = to.backend.stage()
        try:
            with source:
                checker = VerifyingCopier(digest, self.url, size)
                while chunk := source.read(STEP):
                    checker.feed(chunk)
                    staged.write(chunk)
                checker.check()
        except BaseException:
            staged.discard()
            raise
        staged.publish(path)
        return True

    def iter_blobs(self) -> Iterator[str]:
        """Every stored blob digest."""
        for path in self.backend.walk(OBJECTS):
            try:
                yield digest_of_blob_path(path)
            except ValueError:
                continue

    def staging_dir(self) -> Path:
        """A new empty local folder to write a directory output into.

        Under the root's `tmp/` for a local store (the same disk as the blobs),
        else in the system's temp folder.
        """
        if isinstance(self.backend, LocalBackend):
            path = Path(self.backend.root, "tmp", f"dir-{uuid.uuid4().hex}")
            path.mkdir(parents=True)
            return path
        return Path(tempfile.mkdtemp(prefix="stardag-dir-"))

    # -- action records -----------------------------------------------------
    def get_record(self, task_id: str) -> ActionRecord | None:
        """The action record of a task id, or None if there is none.

        The file is read every time; bytes equal to those last seen for this id give
        the record parsed and validated from them then (`_seen`).
        """
        try:
            data = self.backend.read_bytes(record_path(task_id))
        except FileNotFoundError:
            return None
        known = self._seen.get(task_id)
        if known is not None and known[0] == data:
            return known[1]
        record = ActionRecord.from_json(data, task_id)
        self._seen.put(task_id, data, record)
        return record

    def read_record(self, task_id: str) -> ActionRecord | None:
        """`get_record` for a scan of a whole store (gc, verify): parsed from the file,
        and not kept among the records last seen, which a scan would only churn."""
        try:
            data = self.backend.read_bytes(record_path(task_id))
        except FileNotFoundError:
            return None
        return ActionRecord.from_json(data, task_id)

    def scan_records(self) -> Iterator[tuple[str, FileStat | None, bytes]]:
        """Every action record in one pass (gc, verify): its task id, its file's size
        and mtime where the listing gives them (a local store, else None), and its
        stored bytes, to parse with `ActionRecord.from_json`. A record deleted since
        the listing is left out."""
        if not isinstance(self.backend, LocalBackend):
            for task_id in self.iter_records():
                try:
                    yield task_id, None, self.backend.read_bytes(record_path(task_id))
                except FileNotFoundError:
                    continue
            return
        for task_id, st, data in scan_files(self.backend):
            yield task_id, FileStat(st.st_size, st.st_mtime), data

    def put_record(self, record: ActionRecord) -> None:
        """Publish a record; its blob must already be stored (blob, then record)."""
        record.validate(record.task_id)
        self.publish_record(record)

    def publish_record(self, record: ActionRecord) -> None:
        """`put_record` for a record built from checked parts (a task's own save):
        its fields are not validated again; its blob must still be stored."""
        if record.inline is None and not self.has_blob(record.digest):
            raise _missing(record.digest, record.task_id)
        data = record.to_json()
        self.backend.put_bytes(record_path(record.task_id), data)
        self._seen.put(record.task_id, data, record)

    def delete_record(self, task_id: str) -> None:
        """Remove a task's action record and its signatures (the task becomes incomplete)."""
        self.backend.delete(record_path(task_id))
        self.backend.delete(signature_path(task_id))  # none on a local store: a no-op

    def is_complete(self, task_id: str) -> bool:
        """A cache hit: the task's record exists and so does every blob its output needs.

        A hit refreshes the mtime of the record and its blobs (a reuse counts as a write
        for gc), under the store's shared lock, so gc either deleted them before this
        check or keeps them after it (`_lock`).
        """
        local = isinstance(self.backend, LocalBackend)  # elsewhere the lock is a no-op
        if local and not self.backend.exists(record_path(task_id)):
            return False  # a miss needs no lock: gc can only make it more of one
        with self.lock.shared():
            record = self.get_record(task_id)
            blobs = None if record is None else self._present_blobs(record)
            if blobs is None:
                return False
            self.backend.touch(record_path(task_id))
            for digest in blobs:
                self.backend.touch(blob_path(digest))
            return True

    def _present_blobs(self, record: ActionRecord) -> list[str] | None:
        """The blobs a record's output needs if every one is stored, else None."""
        own = [] if record.inline is not None else [record.digest]
        if own and not self.has_blob(record.digest):
            return None
        if record.serializer != DIRECTORY_SERIALIZER:
            return own
        try:
            files = self.required_blobs(record)
        except BlobNotFoundError:
            return None
        return files if len(self.has_blobs(files)) == len(set(files)) else None

    def required_blobs(self, record: ActionRecord) -> list[str]:
        """Every blob a record's output needs: its own, and a directory's files."""
        needed = [] if record.inline is not None else [record.digest]
        if record.serializer == DIRECTORY_SERIALIZER:
            manifest = Manifest.from_json(self.read_output(record), record.digest)
            needed.extend(dict.fromkeys(entry.digest for entry in manifest.files))
        return needed

    def read_output(self, record: ActionRecord) -> bytes:
        """The verified raw bytes of a record's output, inline or from its blob."""
        data = record.inline_bytes()
        if data is None:
            return self.read_blob(record.digest, record.task_id, record.size_raw)
        if _hashing.digest_bytes(data) != record.digest:
            raise corrupt(record.digest, record.task_id, "its inline bytes hash to another digest")
        return data

    def iter_records(self) -> Iterator[str]:
        """Every task id with an action record."""
        for path in self.backend.walk(RECORDS):
            try:
                yield task_id_of_record_path(path)
            except ValueError:
                continue


class _SeenRecords:
    """The records a store last read or wrote, by task id, with their stored bytes.

    A build reads each task's inputs' records right after writing them: a record
    whose file still holds the same bytes is not parsed and validated again. The
    newest `SEEN_RECORDS` are kept (a build's working set, not its history).
    """

    def __init__(self) -> None:
        self._records: dict[str, tuple[bytes, ActionRecord]] = {}
        self._lock = threading.Lock()

    def get(self, task_id: str) -> tuple[bytes, ActionRecord] | None:
        return self._records.get(task_id)

    def put(self, task_id: str, data: bytes, record: ActionRecord) -> None:
        with self._lock:
            records = self._records
            records.pop(task_id, None)
            records[task_id] = (data, record)
            if len(records) > SEEN_RECORDS:
                del records[next(iter(records))]


def _missing(digest: str, task_id: str | None) -> BlobNotFoundError:
    owner = f" (output of task {task_id})" if task_id else ""
    return BlobNotFoundError(
        f"blob {digest}{owner} is not in the store; rebuild the task to restore it",
        digest=digest,
        task_id=task_id,
    )


@contextmanager
def pinned_settings() -> Iterator[None]:
    """Read the store's settings from the environment once, for this context (one build).

    Each output written asks for the compression settings and whether to fsync:
    three reads of the environment per task otherwise. Settings that do not parse
    are left unpinned, so the error comes where an output is written, as before.
    """
    try:
        compression, fsync = Compression.from_env(), fsync_enabled()
    except StardagError:
        yield
        return
    tokens = PINNED_COMPRESSION.set(compression), PINNED_FSYNC.set(fsync)
    try:
        yield
    finally:
        PINNED_FSYNC.reset(tokens[1])
        PINNED_COMPRESSION.reset(tokens[0])


_STORES: dict[str, Store] = {}
_STORES_LOCK = threading.Lock()


def store_for(url: str) -> Store:
    """The store for a root URL (one object per URL per process)."""
    store = _STORES.get(url)
    if store is None:
        with _STORES_LOCK:
            store = _STORES.setdefault(url, Store(url))
    return store


def _fork_reset() -> None:  # a forked child opens its own fsspec clients
    _STORES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fork_reset)
