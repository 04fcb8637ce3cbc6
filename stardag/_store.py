"""The content-addressed store: zstd blobs named by blake3, and one action record per task.

Layout under a root (documented in docs/identity-and-storage.md):

    objects/<d[:2]>/<d[2:]>          zstd frame (checksum on) of the bytes whose blake3 is d
    records/<id[:2]>/<id[2:]>.json   action record: spec, digest, serializer, sizes
    tmp/<random>                     writes in progress (renamed away when complete)

Invariant, blob then record: a record is published only after its blob is whole
under its final name, so a record never points at a missing or partial blob
(unless the blob is deleted later, which makes the task incomplete, not broken).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import io
import json
import threading
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import zstandard

from stardag import _hashing
from stardag._backends import Backend, Staged, backend_for
from stardag._errors import BlobNotFoundError, CorruptBlobError, InvalidRecordError

RECORD_SCHEMA = 1
OBJECTS = "objects"
RECORDS = "records"
# Values up to this size are compressed in one shot in memory; larger ones stream.
SMALL_BLOB = 4 << 20
# Outputs up to this size live inside their action record (base64), not in a blob file:
# one small file per task instead of two. The digest is still verified on every read.
INLINE_MAX = 4096
CHUNK = 1 << 20
ZSTD_LEVEL = 1

_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    cctx = getattr(_local, "cctx", None)
    if cctx is None:
        cctx = _local.cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
    return cctx


def _decompressor() -> zstandard.ZstdDecompressor:
    dctx = getattr(_local, "dctx", None)
    if dctx is None:
        dctx = _local.dctx = zstandard.ZstdDecompressor()
    return dctx


def blob_path(digest: str) -> str:
    """Where the blob with this digest lives, relative to the root."""
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
    return f"{RECORDS}/{task_id[:2]}/{task_id[2:]}.json"


def task_id_of_record_path(path: str) -> str:
    """The task id a record path names; `ValueError` if it is not a record path."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == RECORDS and parts[2].endswith(".json"):
        task_id = parts[1] + parts[2][: -len(".json")]
        if _hashing.is_hex_key(task_id):
            return task_id
    raise ValueError(f"not a record path: {path!r}")


@dataclass(frozen=True)
class BlobInfo:
    """What a blob write produced."""

    digest: str
    size_raw: int
    size_stored: int
    inline: bytes | None = None  # the raw bytes, when small enough to live in the record


@dataclass(frozen=True)
class ActionRecord:
    """What the store knows about one task id: its spec and its output blob."""

    task_id: str
    spec: dict[str, Any]
    digest: str
    serializer: str
    size_raw: int
    size_stored: int
    created: str
    compression: str = "zstd"
    requires: list[str] = field(default_factory=list)
    dynamic: list[str] = field(default_factory=list)
    inline: str | None = None  # base64 of the raw bytes of a small output
    schema: int = RECORD_SCHEMA

    def to_json(self) -> bytes:
        """The record as it is stored."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def inline_bytes(self) -> bytes | None:
        """The output's raw bytes when they live in the record, else None."""
        if self.inline is None:
            return None
        try:
            return base64.b64decode(self.inline, validate=True)
        except binascii.Error:
            raise _corrupt(self.digest, self.task_id, "its inline bytes are not base64") from None

    @classmethod
    def from_json(cls, data: bytes, task_id: str) -> ActionRecord:
        """Parse and validate a stored record of `task_id`."""
        try:
            raw = json.loads(data)
            record = cls(**raw)
        except (ValueError, TypeError) as exc:
            raise InvalidRecordError(
                f"action record of task {task_id} is malformed: {exc}", task_id=task_id
            ) from None
        record.validate(task_id)
        return record

    def validate(self, task_id: str) -> None:
        """Check formats and that the record belongs to `task_id`."""
        problems = []
        if self.schema != RECORD_SCHEMA:
            problems.append(f"unsupported record schema {self.schema}")
        if self.task_id != task_id:
            problems.append(f"it names task {self.task_id}")
        if not _hashing.is_hex_key(self.digest):
            problems.append(f"digest {self.digest!r} is not 64 hex characters")
        if not all(_hashing.is_hex_key(d) for d in (*self.requires, *self.dynamic)):
            problems.append("a dependency id is not 64 hex characters")
        if problems:
            raise InvalidRecordError(
                f"action record of task {task_id} is invalid: {'; '.join(problems)}",
                task_id=task_id,
                digest=self.digest if _hashing.is_hex_key(str(self.digest)) else None,
            )


def now_iso() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class BlobWriter(io.RawIOBase):
    """A binary sink that hashes and compresses what is written, then publishes a blob.

    Up to `SMALL_BLOB` bytes are buffered and compressed in one shot; past that
    the writer streams through zstd into a staged file, never holding a second
    whole copy. `finish()` publishes under the digest; `abort()` leaves nothing.
    """

    def __init__(self, store: Store, inline_max: int = 0) -> None:
        super().__init__()
        self._store = store
        self._inline_max = inline_max
        self._hasher = _hashing.new_hasher()
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._size = 0
        self._staged: Staged | None = None
        self._stream: Any = None
        self._stored = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any, /) -> int:
        view = bytes(data) if not isinstance(data, bytes) else data
        self._hasher.update(view)
        self._size += len(view)
        if self._stream is not None:
            self._stream.write(view)
        else:
            self._buffer.append(view)
            self._buffered += len(view)
            if self._buffered > SMALL_BLOB:
                self._start_streaming()
        return len(view)

    def _start_streaming(self) -> None:
        self._staged = self._store.backend.stage()
        sink = typing.cast(IO[bytes], _CountingSink(self))
        self._stream = _compressor().stream_writer(sink, closefd=False, write_return_read=True)
        for chunk in self._buffer:
            self._stream.write(chunk)
        self._buffer.clear()

    def _count_stored(self, data: bytes) -> None:
        assert self._staged is not None
        self._staged.write(data)
        self._stored += len(data)

    def finish(self) -> BlobInfo:
        """Publish the blob under its digest (once: an existing blob is kept)."""
        digest = self._hasher.hexdigest()
        if self._stream is None:
            return self._finish_small(digest)
        self._stream.flush(zstandard.FLUSH_FRAME)
        staged, self._staged = self._staged, None
        assert staged is not None
        path = blob_path(digest)
        if self._store.backend.exists(path):
            staged.discard()
        else:
            staged.publish(path)
        return BlobInfo(digest, self._size, self._stored)

    def _finish_small(self, digest: str) -> BlobInfo:
        data = b"".join(self._buffer)
        self._buffer.clear()
        if self._size <= self._inline_max:
            return BlobInfo(digest, self._size, 0, inline=data)
        path = blob_path(digest)
        backend = self._store.backend
        if backend.exists(path):
            return BlobInfo(digest, self._size, backend.size(path))
        compressed = _compressor().compress(data)
        backend.put_bytes(path, compressed)
        return BlobInfo(digest, self._size, len(compressed))

    def abort(self) -> None:
        """Drop everything written; no blob appears."""
        self._buffer.clear()
        if self._staged is not None:
            self._staged.discard()
            self._staged = None


class _CountingSink:
    def __init__(self, writer: BlobWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> int:
        self._writer._count_stored(data)
        return len(data)


class VerifyingReader(io.RawIOBase):
    """Decompresses a blob while hashing it; at the end a mismatch raises `CorruptBlobError`."""

    def __init__(self, raw: IO[bytes], digest: str, task_id: str | None) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._task_id = task_id
        self._hasher = _hashing.new_hasher()
        self._reader = _decompressor().stream_reader(raw, read_across_frames=True)
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        try:
            data = self._reader.read(len(buffer))
        except zstandard.ZstdError as exc:
            raise _corrupt(self._digest, self._task_id, f"bad zstd frame ({exc})") from None
        if not data:
            self._check()
            return 0
        self._hasher.update(data)
        buffer[: len(data)] = data
        return len(data)

    def _check(self) -> None:
        self._done = True
        if self._hasher.hexdigest() != self._digest:
            raise _corrupt(self._digest, self._task_id, "its bytes hash to another digest")

    def verify(self) -> None:
        """Read to the end and check the digest (`CorruptBlobError` on a mismatch)."""
        scratch = bytearray(CHUNK)
        while self.readinto(scratch):
            pass

    def close(self) -> None:
        self._raw.close()
        super().close()


def _corrupt(digest: str, task_id: str | None, why: str) -> CorruptBlobError:
    owner = f" (output of task {task_id})" if task_id else ""
    return CorruptBlobError(
        f"blob {digest}{owner} is corrupt: {why}. Run `stardag verify --repair` and rebuild.",
        digest=digest,
        task_id=task_id,
    )


class Store:
    """Blobs and action records under one root URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.backend: Backend = backend_for(url)

    # -- blobs -------------------------------------------------------------
    def writer(self, inline_max: int = 0) -> BlobWriter:
        """A sink for a new blob; call `finish()` (or `abort()`) when done.

        Up to `inline_max` bytes are not stored as a blob but returned in `BlobInfo.inline`.
        """
        return BlobWriter(self, inline_max)

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store bytes as a blob."""
        writer = self.writer()
        writer.write(data)
        return writer.finish()

    def has_blob(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""
        return self.backend.exists(blob_path(digest))

    def open_blob(self, digest: str, task_id: str | None = None) -> VerifyingReader:
        """A verifying stream over a blob's uncompressed bytes."""
        try:
            raw = self.backend.open_read(blob_path(digest))
        except FileNotFoundError:
            raise _missing(digest, task_id) from None
        return VerifyingReader(raw, digest, task_id)

    def read_blob(self, digest: str, task_id: str | None = None) -> bytes:
        """A blob's uncompressed bytes, verified against the digest."""
        try:
            raw = self.backend.read_bytes(blob_path(digest))
        except FileNotFoundError:
            raise _missing(digest, task_id) from None
        try:
            data = _decompressor().decompressobj().decompress(raw)
        except zstandard.ZstdError as exc:
            raise _corrupt(digest, task_id, f"bad zstd frame ({exc})") from None
        if _hashing.digest_bytes(data) != digest:
            raise _corrupt(digest, task_id, "its bytes hash to another digest")
        return data

    def iter_blobs(self) -> Iterator[str]:
        """Every stored blob digest."""
        for path in self.backend.walk(OBJECTS):
            try:
                yield digest_of_blob_path(path)
            except ValueError:
                continue

    # -- action records -----------------------------------------------------
    def get_record(self, task_id: str) -> ActionRecord | None:
        """The action record of a task id, or None if there is none."""
        try:
            data = self.backend.read_bytes(record_path(task_id))
        except FileNotFoundError:
            return None
        return ActionRecord.from_json(data, task_id)

    def put_record(self, record: ActionRecord) -> None:
        """Publish a record; its blob must already be stored (blob, then record)."""
        if record.inline is None and not self.has_blob(record.digest):
            raise _missing(record.digest, record.task_id)
        self.backend.put_bytes(record_path(record.task_id), record.to_json())

    def delete_record(self, task_id: str) -> None:
        """Remove a task's action record (the task becomes incomplete)."""
        self.backend.delete(record_path(task_id))

    def is_complete(self, task_id: str) -> bool:
        """A cache hit: the task's record exists and so does the blob it names."""
        record = self.get_record(task_id)
        return record is not None and (record.inline is not None or self.has_blob(record.digest))

    def read_output(self, record: ActionRecord) -> bytes:
        """The verified raw bytes of a record's output, inline or from its blob."""
        data = record.inline_bytes()
        if data is None:
            return self.read_blob(record.digest, record.task_id)
        if _hashing.digest_bytes(data) != record.digest:
            raise _corrupt(record.digest, record.task_id, "its inline bytes hash to another digest")
        return data

    def iter_records(self) -> Iterator[str]:
        """Every task id with an action record."""
        for path in self.backend.walk(RECORDS):
            try:
                yield task_id_of_record_path(path)
            except ValueError:
                continue


def _missing(digest: str, task_id: str | None) -> BlobNotFoundError:
    owner = f" (output of task {task_id})" if task_id else ""
    return BlobNotFoundError(
        f"blob {digest}{owner} is not in the store; rebuild the task to restore it",
        digest=digest,
        task_id=task_id,
    )


_STORES: dict[str, Store] = {}
_STORES_LOCK = threading.Lock()


def store_for(url: str) -> Store:
    """The store for a root URL (one object per URL per process)."""
    store = _STORES.get(url)
    if store is None:
        with _STORES_LOCK:
            store = _STORES.setdefault(url, Store(url))
    return store
