"""Storage backends: the few byte-level operations the store needs, per kind of root.

`LocalBackend` works on a local directory with `os` calls (the hot path of every
build), publishing by temp file then `os.replace`. `FsspecBackend` serves every
other fsspec URL (`memory://`, `s3://`, ...), publishing with a single put.
Both honour one contract, run against each in the tests.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from typing import IO, Protocol

TMP_DIR = "tmp"


class Staged(Protocol):
    """A file being written; `publish(path)` makes it appear whole under `path`."""

    def write(self, data: bytes, /) -> int:
        """Append bytes."""

    def publish(self, path: str) -> None:
        """Atomically place the bytes at `path` (replacing anything there)."""

    def discard(self) -> None:
        """Drop the bytes; nothing appears anywhere."""


class Backend(Protocol):
    """Byte storage under one root; paths are relative, `/`-separated."""

    url: str

    def exists(self, path: str) -> bool:
        """Whether a file is at `path`."""

    def read_bytes(self, path: str) -> bytes:
        """The whole file at `path` (`FileNotFoundError` if none)."""

    def open_read(self, path: str) -> IO[bytes]:
        """A binary stream over the file at `path` (`FileNotFoundError` if none)."""

    def stage(self) -> Staged:
        """A new staged file to write into."""

    def put_bytes(self, path: str, data: bytes) -> None:
        """Atomically write `data` at `path`."""

    def delete(self, path: str) -> None:
        """Remove the file at `path`; a missing file is not an error."""

    def size(self, path: str) -> int:
        """The size in bytes of the file at `path`."""

    def walk(self, prefix: str) -> Iterator[str]:
        """Every file path under `prefix`."""


def fsync_enabled() -> bool:
    """Whether writes are fsynced before publishing (`STARDAG_FSYNC=1`; default off)."""
    return os.environ.get("STARDAG_FSYNC", "0").lower() in ("1", "true", "yes")


def _open_creating_dirs(path: str) -> IO[bytes]:
    try:
        return open(path, "wb")  # closed by the caller
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, "wb")  # closed by the caller


class _LocalStaged:
    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        self.tmp_path = os.path.join(backend.root, TMP_DIR, uuid.uuid4().hex)
        self._file: IO[bytes] = _open_creating_dirs(self.tmp_path)

    def write(self, data: bytes, /) -> int:
        return self._file.write(data)

    def publish(self, path: str) -> None:
        try:
            if fsync_enabled():
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
            final = self._backend.abspath(path)
            try:
                os.replace(self.tmp_path, final)
            except FileNotFoundError:  # first file in this fan-out directory
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(self.tmp_path, final)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_path)


class LocalBackend:
    """A directory on local disk."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(os.path.expanduser(root))
        self.url = self.root

    def abspath(self, path: str) -> str:
        return os.path.join(self.root, path)

    def exists(self, path: str) -> bool:
        return os.path.exists(self.abspath(path))

    def read_bytes(self, path: str) -> bytes:
        with open(self.abspath(path), "rb") as f:
            return f.read()

    def open_read(self, path: str) -> IO[bytes]:
        return open(self.abspath(path), "rb")  # the caller closes it

    def stage(self) -> Staged:
        return _LocalStaged(self)

    def put_bytes(self, path: str, data: bytes) -> None:
        staged = self.stage()
        try:
            staged.write(data)
        except BaseException:
            staged.discard()
            raise
        staged.publish(path)

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.abspath(path))

    def size(self, path: str) -> int:
        return os.stat(self.abspath(path)).st_size

    def walk(self, prefix: str) -> Iterator[str]:
        base = self.abspath(prefix)
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for name in files:
                yield f"{rel}/{name}"


class _FsspecStaged:
    """Spools to memory, then to a local temp file past 64 MiB; publishes with one put."""

    def __init__(self, backend: FsspecBackend) -> None:
        self._backend = backend
        self._spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # noqa: SIM115

    def write(self, data: bytes, /) -> int:
        return self._spool.write(data)

    def publish(self, path: str) -> None:
        try:
            self._spool.seek(0)
            self._backend.put_stream(path, self._spool)
        finally:
            self._spool.close()

    def discard(self) -> None:
        self._spool.close()


class FsspecBackend:
    """Any fsspec URL (`memory://`, `s3://`, `gs://`, ...); object stores get one put."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.root = self.root.rstrip("/")

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self._full(path)))

    def read_bytes(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(self._full(path)))

    def open_read(self, path: str) -> IO[bytes]:
        return self.fs.open(self._full(path), "rb")  # type: ignore[no-any-return]  # fsspec is untyped

    def stage(self) -> Staged:
        return _FsspecStaged(self)

    def put_stream(self, path: str, stream: IO[bytes]) -> None:
        data = stream.read()
        self.put_bytes(path, data)

    def put_bytes(self, path: str, data: bytes) -> None:
        full = self._full(path)
        parent = full.rsplit("/", 1)[0]
        with contextlib.suppress(FileExistsError, NotImplementedError):
            self.fs.makedirs(parent, exist_ok=True)
        self.fs.pipe_file(full, data)

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._full(path))

    def size(self, path: str) -> int:
        return int(self.fs.size(self._full(path)))

    def walk(self, prefix: str) -> Iterator[str]:
        base = self._full(prefix)
        if not self.fs.exists(base):
            return
        for found in self.fs.find(base):
            name = str(found)
            yield name[len(self.root) + 1 :] if name.startswith(self.root + "/") else name


def backend_for(url: str) -> Backend:
    """The backend for a root: a local path (or `file://`) or any fsspec URL."""
    if "://" not in url:
        return LocalBackend(url)
    if url.startswith("file://"):
        return LocalBackend(url[len("file://") :])
    return FsspecBackend(url)
