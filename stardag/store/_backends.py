"""Storage backends: the few byte-level operations the store needs, per kind of root.

`LocalBackend` works on a local directory with `os` calls (the hot path of every
build) and publishes by temp file then `os.replace`. `FsspecBackend` (in `_fsspec`)
serves every other fsspec URL. Both honour one contract, run against each in
`tests/store/test_backends_contract.py`.

A backend failure other than a missing file (unreachable, timed out, denied, full)
is a `BackendError` naming the root and the operation.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
from collections.abc import Collection, Iterator
from contextvars import ContextVar
from typing import IO, Any, NamedTuple, NoReturn, Protocol

from stardag._errors import BackendError

TMP_DIR = "tmp"
# With fsync on, writeback of a staged file starts every this many bytes.
WRITEBACK_STEP = 8 << 20
_SYNC_FILE_RANGE_WRITE = getattr(os, "SYNC_FILE_RANGE_WRITE", 2)


class FileStat(NamedTuple):
    """Size and modification time (seconds since the epoch) of a stored file (a tuple:
    gc lists one per record of a store)."""

    size: int
    mtime: float


class Staged(Protocol):
    """A file being written; `publish(path)` makes it appear whole under `path`."""

    def write(self, data: Any, /) -> int:
        """Append the bytes of a buffer (bytes, bytearray, memoryview)."""

    def publish(self, path: str) -> None:
        """Atomically place the bytes at `path` (replacing anything there)."""

    def discard(self) -> None:
        """Drop the bytes; nothing appears anywhere."""


class Backend(Protocol):
    """Byte storage under one root; paths are relative, `/`-separated."""

    url: str

    def exists(self, path: str) -> bool:
        """Whether a file is at `path`."""

    def exists_many(self, paths: Collection[str]) -> set[str]:
        """Those of `paths` that are files (one batched round trip where possible)."""

    def stat(self, path: str) -> FileStat:
        """Size and mtime of the file at `path` (`FileNotFoundError` if none)."""

    def read_bytes(self, path: str) -> bytes:
        """The whole file at `path` (`FileNotFoundError` if none)."""

    def open_read(self, path: str) -> IO[bytes]:
        """A binary stream over the file at `path` (`FileNotFoundError` if none)."""

    def stage(self) -> Staged:
        """A new staged file to write into."""

    def put_bytes(self, path: str, data: bytes) -> None:
        """Atomically write `data` at `path`."""

    def touch(self, path: str) -> None:
        """Mark an existing file as just reused (its mtime), where the backend can."""

    def delete(self, path: str) -> None:
        """Remove the file at `path`; a missing file is not an error."""

    def walk(self, prefix: str) -> Iterator[str]:
        """Every file path under `prefix`."""


SMALL_READ = 8192  # one read for a file smaller than this (records); a larger buffer costs more


PINNED_FSYNC: ContextVar[bool | None] = ContextVar("stardag_fsync", default=None)


def fsync_enabled() -> bool:
    """Whether writes are fsynced before publishing (`STARDAG_FSYNC=1`; default off).

    Read when asked, unless pinned in this context (`PINNED_FSYNC`: one build).
    """
    pinned = PINNED_FSYNC.get()
    if pinned is not None:
        return pinned
    return os.environ.get("STARDAG_FSYNC", "0").lower() in ("1", "true", "yes")


# What a writer sees when the disk is full, over quota, or past the file size limit.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def fail(url: str, operation: str, path: str, exc: BaseException) -> NoReturn:
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, OSError) and exc.errno in _NO_ROOM:
        detail += (
            ". There is no room left to write it: free some space (`stardag gc` removes "
            "outputs nothing needs) and build again"
        )
    raise BackendError(
        f"storage backend {url} failed to {operation} {path!r}: {detail}", url=url
    ) from exc


# -- local disk ----------------------------------------------------------------


_STAGING = itertools.count()
_STAGING_PREFIX = [os.urandom(8).hex()]  # this process's own (a forked child draws anew)
os.register_at_fork(after_in_child=lambda: _STAGING_PREFIX.__setitem__(0, os.urandom(8).hex()))


def _staging_name() -> str:
    """A temporary file name no other writer uses: this process's random prefix, a count.

    Unique across processes and machines (the prefix) and across this process's threads
    (`itertools.count` is atomic), without a system call for randomness per file.
    """
    return f"{_STAGING_PREFIX[0]}-{next(_STAGING)}"


class _LocalStaged:
    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        self.tmp_path = backend.abspath(f"{TMP_DIR}/{_staging_name()}")
        self._durable = fsync_enabled()
        self._written = self._flushed = 0
        try:
            # Created as `put_bytes` creates its files, buffered here for streamed writes;
            # closed by `publish` or `discard`.
            self._file: IO[bytes] = open(_create(self.tmp_path), "wb")  # noqa: SIM115
        except OSError as exc:
            fail(backend.url, "stage a file in", TMP_DIR, exc)

    def write(self, data: Any, /) -> int:
        try:
            size = self._file.write(data)
            self._written += size
            if self._durable and self._written - self._flushed >= WRITEBACK_STEP:
                self._start_writeback()
            return size
        except OSError as exc:
            self.discard()
            fail(self._backend.url, "write", self.tmp_path, exc)

    def _start_writeback(self) -> None:
        """Let the disk start on what is written, so the final fsync waits for little."""
        self._file.flush()
        start_writeback = getattr(os, "sync_file_range", None)  # Linux only
        if start_writeback is not None:
            size = self._written - self._flushed
            start_writeback(self._file.fileno(), self._flushed, size, _SYNC_FILE_RANGE_WRITE)
        self._flushed = self._written

    def publish(self, path: str) -> None:
        try:
            if self._durable:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
            _place(self.tmp_path, self._backend.abspath(path))
        except OSError as exc:
            self.discard()
            fail(self._backend.url, "publish", path, exc)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_path)


def _place(tmp_path: str, final: str) -> None:
    """Rename a written temp file into place, making its fan-out folder if it is new."""
    try:
        os.replace(tmp_path, final)
    except FileNotFoundError:  # first file in this fan-out directory
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(tmp_path, final)


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _create(path: str) -> int:
    """A new file at `path`, open for writing, as a plain descriptor."""
    try:
        return os.open(path, _CREATE, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, _CREATE, 0o666)


def _write_whole(fd: int, data: bytes, durable: bool) -> None:
    """Write all of `data` to `fd` (fsynced if `durable`), then close it."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_fd(fd: int) -> bytes:
    """Everything left to read from an open file descriptor (which stays open)."""
    data = os.read(fd, SMALL_READ)
    if len(data) < SMALL_READ:
        return data
    parts = [data]
    while chunk := os.read(fd, 1 << 20):
        parts.append(chunk)
    return b"".join(parts)


class LocalBackend:
    """A directory on local disk."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(os.path.expanduser(root))
        self.url = self.root
        self._prefix = self.root.rstrip("/") + "/"

    def abspath(self, path: str) -> str:
        """The absolute local path of a relative store path (ours: never absolute)."""
        return self._prefix + path

    def exists(self, path: str) -> bool:
        return os.path.exists(self.abspath(path))

    def exists_many(self, paths: Collection[str]) -> set[str]:
        return {path for path in paths if os.path.exists(self.abspath(path))}

    def stat(self, path: str) -> FileStat:
        st = os.stat(self.abspath(path))
        return FileStat(st.st_size, st.st_mtime)

    def read_bytes(self, path: str) -> bytes:
        # Plain file descriptors: most reads are of small records, where building
        # a buffered file object cost as much as the read itself.
        fd = os.open(self.abspath(path), os.O_RDONLY)
        try:
            return read_fd(fd)
        finally:
            os.close(fd)

    def open_read(self, path: str) -> IO[bytes]:
        return open(self.abspath(path), "rb")  # the caller closes it

    def stage(self) -> Staged:
        return _LocalStaged(self)

    def put_bytes(self, path: str, data: bytes) -> None:
        # Whole bytes through plain descriptors: most puts are small records, where a
        # buffered file object (and the fstat that opening one makes) cost as much as
        # the writing itself.
        tmp_path = self.abspath(f"{TMP_DIR}/{_staging_name()}")
        try:
            fd = _create(tmp_path)
        except OSError as exc:
            fail(self.url, "stage a file in", TMP_DIR, exc)
        operation = "write"
        try:
            _write_whole(fd, data, fsync_enabled())
            operation = "publish"
            _place(tmp_path, self.abspath(path))
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
            if isinstance(exc, OSError):
                fail(self.url, operation, tmp_path if operation == "write" else path, exc)
            raise

    def touch(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.utime(self.abspath(path))

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.abspath(path))

    def walk(self, prefix: str) -> Iterator[str]:
        base = self.abspath(prefix)
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for name in files:
                yield f"{rel}/{name}"
