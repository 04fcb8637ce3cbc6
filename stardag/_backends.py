"""Storage backends: the few byte-level operations the store needs, per kind of root.

`LocalBackend` works on a local directory with `os` calls (the hot path of every
build) and publishes by temp file then `os.replace`. `FsspecBackend` serves every
other fsspec URL: on object stores (`s3://`, `gs://`, `memory://`, ...) a staged
file is published with a single put, which the store makes visible whole or not at
all; on other file systems (`sftp://`, ...) it is written under `tmp/` and moved.
Both honour one contract, run against each in `tests/test_backends_contract.py`.

A backend failure other than a missing file (unreachable, timed out, denied, full)
is a `BackendError` naming the root and the operation.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import IO, Any, NoReturn, Protocol

from stardag._errors import BackendError, StardagError

TMP_DIR = "tmp"
# fsspec protocols whose put is atomic per object: publish with one put, no rename.
OBJECT_STORE_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "memory"}
)
# A staged write for an fsspec root stays in memory up to this size, then spills to disk.
SPOOL_MAX = 8 << 20
COPY_CHUNK = 4 << 20


@dataclass(frozen=True)
class FileStat:
    """Size and modification time (seconds since the epoch) of a stored file."""

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


def fsync_enabled() -> bool:
    """Whether writes are fsynced before publishing (`STARDAG_FSYNC=1`; default off)."""
    return os.environ.get("STARDAG_FSYNC", "0").lower() in ("1", "true", "yes")


def _fail(url: str, operation: str, path: str, exc: BaseException) -> NoReturn:
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    raise BackendError(
        f"storage backend {url} failed to {operation} {path!r}: {detail}", url=url
    ) from exc


# -- local disk ----------------------------------------------------------------


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
        try:
            self._file: IO[bytes] = _open_creating_dirs(self.tmp_path)
        except OSError as exc:
            _fail(backend.url, "stage a file in", TMP_DIR, exc)

    def write(self, data: Any, /) -> int:
        try:
            return self._file.write(data)
        except OSError as exc:
            self.discard()
            _fail(self._backend.url, "write", self.tmp_path, exc)

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
        except OSError as exc:
            self.discard()
            _fail(self._backend.url, "publish", path, exc)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_path)


class LocalBackend:
    """A directory on local disk."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(os.path.expanduser(root))
        self.url = self.root

    def abspath(self, path: str) -> str:
        """The absolute local path of a relative store path."""
        return os.path.join(self.root, path)

    def exists(self, path: str) -> bool:
        return os.path.exists(self.abspath(path))

    def exists_many(self, paths: Collection[str]) -> set[str]:
        return {path for path in paths if os.path.exists(self.abspath(path))}

    def stat(self, path: str) -> FileStat:
        st = os.stat(self.abspath(path))
        return FileStat(st.st_size, st.st_mtime)

    def read_bytes(self, path: str) -> bytes:
        with open(self.abspath(path), "rb") as f:
            return f.read()

    def open_read(self, path: str) -> IO[bytes]:
        return open(self.abspath(path), "rb")  # the caller closes it

    def stage(self) -> Staged:
        return _LocalStaged(self)

    def put_bytes(self, path: str, data: bytes) -> None:
        staged = self.stage()
        staged.write(data)
        staged.publish(path)

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


# -- any fsspec URL --------------------------------------------------------------


class _FsspecStaged:
    """Spools to memory, then to a local temp file past `SPOOL_MAX`; publishes in one put."""

    def __init__(self, backend: FsspecBackend) -> None:
        self._backend = backend
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX)  # noqa: SIM115

    def write(self, data: Any, /) -> int:
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
    """Any fsspec URL (`memory://`, `s3://`, `gs://`, ...).

    `storage_options` go to the fsspec file system (for S3, e.g. `endpoint_url`,
    `key`, `secret`, `config_kwargs`); fsspec's own configuration (`FSSPEC_S3=...`)
    applies too. Listings are not cached: another process may add or remove blobs.
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        import fsspec

        self.url = url.rstrip("/")
        options = {"use_listings_cache": False, **(storage_options or {})}
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **options)
        except ImportError as exc:
            raise StardagError(
                f"store root {url} needs an fsspec package that is not installed: {exc}"
            ) from exc
        self.root = str(root).rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.object_store = any(p in OBJECT_STORE_PROTOCOLS for p in protocols)

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def _call(self, operation: str, path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.fs, method)(*args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001  # fsspec backends raise their own types (botocore, aiohttp): each is a backend failure
            _fail(self.url, operation, path, exc)

    def exists(self, path: str) -> bool:
        return bool(self._call("check", path, "exists", self._full(path)))

    def exists_many(self, paths: Collection[str]) -> set[str]:
        paths = list(paths)
        if not getattr(self.fs, "async_impl", False) or len(paths) < 2:
            return {path for path in paths if self.exists(path)}
        from fsspec.asyn import _run_coros_in_chunks, sync

        coros = [self.fs._exists(self._full(path)) for path in paths]
        try:
            answers = sync(self.fs.loop, _run_coros_in_chunks, coros, return_exceptions=True)
        except Exception as exc:  # noqa: BLE001  # see _call
            _fail(self.url, "check", f"{len(paths)} paths", exc)
        for path, answer in zip(paths, answers, strict=True):
            if isinstance(answer, BaseException) and not isinstance(answer, FileNotFoundError):
                _fail(self.url, "check", path, answer)
        return {path for path, answer in zip(paths, answers, strict=True) if answer is True}

    def stat(self, path: str) -> FileStat:
        full = self._full(path)
        info = self._call("stat", path, "info", full)
        if info.get("type") == "directory":
            raise FileNotFoundError(full)
        try:
            mtime = self.fs.modified(full).timestamp()
        except (NotImplementedError, AttributeError):
            mtime = 0.0
        return FileStat(int(info["size"]), float(mtime))

    def read_bytes(self, path: str) -> bytes:
        return bytes(self._call("read", path, "cat_file", self._full(path)))

    def open_read(self, path: str) -> IO[bytes]:
        return self._call("open", path, "open", self._full(path), "rb")  # type: ignore[no-any-return]  # fsspec is untyped

    def stage(self) -> Staged:
        return _FsspecStaged(self)

    def put_stream(self, path: str, stream: IO[bytes]) -> None:
        """Write a stream at `path`: one put on object stores, else a tmp file then a move."""
        if not self.object_store:
            tmp = f"{TMP_DIR}/{uuid.uuid4().hex}"
            self._write_stream(tmp, stream)
            self._call("publish", path, "mv", self._full(tmp), self._full(path))
            return
        if isinstance(stream, io.BytesIO) or self.fs.protocol in ("memory", ("memory",)):
            self.put_bytes(path, stream.read())
            return
        self._write_stream(path, stream)

    def _write_stream(self, path: str, stream: IO[bytes]) -> None:
        full = self._full(path)
        self._makedirs(full)
        target = self._call("open", path, "open", full, "wb")
        try:
            while chunk := stream.read(COPY_CHUNK):
                target.write(chunk)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                target.discard()  # no partial object: the multipart upload is aborted
            if isinstance(exc, Exception) and not isinstance(exc, StardagError):
                _fail(self.url, "write", path, exc)
            raise
        try:
            target.close()
        except Exception as exc:  # noqa: BLE001  # see _call
            with contextlib.suppress(Exception):
                target.discard()
            _fail(self.url, "write", path, exc)

    def _makedirs(self, full: str) -> None:
        if self.object_store:
            return  # prefixes need no creation
        parent = full.rsplit("/", 1)[0]
        with contextlib.suppress(FileExistsError, NotImplementedError):
            self._call("create a folder for", parent, "makedirs", parent, exist_ok=True)

    def put_bytes(self, path: str, data: bytes) -> None:
        full = self._full(path)
        if not self.object_store:
            self.put_stream(path, io.BytesIO(data))
            return
        self._call("write", path, "pipe_file", full, bytes(data))

    def touch(self, path: str) -> None:
        """No-op: object stores cannot refresh an object's mtime without rewriting it."""

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._call("delete", path, "rm_file", self._full(path))

    def walk(self, prefix: str) -> Iterator[str]:
        base = self._full(prefix)
        for found in self._call("list", prefix, "find", base):
            name = str(found)
            if name.startswith(self.root + "/"):
                yield name[len(self.root) + 1 :]


def backend_for(url: str, storage_options: dict[str, Any] | None = None) -> Backend:
    """The backend for a root: a local path (or `file://`) or any fsspec URL."""
    if "://" not in url:
        return LocalBackend(url)
    if url.startswith("file://"):
        return LocalBackend(url[len("file://") :])
    return FsspecBackend(url, storage_options)
