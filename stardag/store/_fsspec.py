"""`FsspecBackend`: a store root at any fsspec URL (`memory://`, `s3://`, `gs://`, ...).

A staged write spools locally (in memory up to `SPOOL_MAX`, then in a temp file)
because a blob's name is known only once its last byte is hashed. Publishing is
then one put on object stores (`s3`, `gs`, `az`, `memory`, ...), which makes the
object visible whole or not at all; on other file systems (`sftp`, ...) it is a
put under `tmp/` and a move.

A remote that stops answering must not hang a build: each put on an asynchronous
file system has a deadline of `STARDAG_REMOTE_TIMEOUT` seconds (default 60) plus
one second per MiB, after which it is cancelled and a `BackendError` raised. Other
calls rely on the client's own timeouts (for S3, `config_kwargs={"read_timeout": ...}`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable, Collection, Coroutine, Iterator
from typing import IO, Any

from stardag._errors import StardagError
from stardag.store._backends import TMP_DIR, FileStat, Staged, fail

# fsspec protocols whose put is atomic per object: publish with one put, no rename.
OBJECT_STORE_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "memory"}
)
# A staged write stays in memory up to this size, then spills to a local temp file.
SPOOL_MAX = 8 << 20
# A put may take this long per byte on top of the base deadline (a floor of 1 MiB/s).
SECONDS_PER_BYTE = 1 / (1 << 20)


def remote_timeout() -> float:
    """The base deadline of one put, in seconds (`STARDAG_REMOTE_TIMEOUT`, default 60)."""
    raw = os.environ.get("STARDAG_REMOTE_TIMEOUT", "").strip()
    try:
        return float(raw) if raw else 60.0
    except ValueError:
        raise StardagError(f"STARDAG_REMOTE_TIMEOUT must be seconds, not {raw!r}") from None


class _Spool:
    """The bytes of one staged write: in memory, then in a local temp file past SPOOL_MAX."""

    def __init__(self) -> None:
        self.memory: bytearray | None = bytearray()
        self.file: IO[bytes] | None = None
        self.size = 0

    def write(self, data: Any, /) -> int:
        size = memoryview(data).nbytes
        if self.memory is not None and len(self.memory) + size <= SPOOL_MAX:
            self.memory += data
        else:
            if self.file is None:
                self.file = tempfile.NamedTemporaryFile(prefix="stardag-", delete=False)  # noqa: SIM115  # closed by close()
                self.file.write(self.memory or b"")
                self.memory = None
            self.file.write(data)
        self.size += size
        return size

    def close(self) -> None:
        self.memory = None
        if self.file is not None:
            self.file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.file.name)
            self.file = None


class _FsspecStaged:
    def __init__(self, backend: FsspecBackend) -> None:
        self._backend = backend
        self._spool = _Spool()

    def write(self, data: Any, /) -> int:
        return self._spool.write(data)

    def publish(self, path: str) -> None:
        try:
            self._backend.put_spool(path, self._spool)
        finally:
            self._spool.close()

    def discard(self) -> None:
        self._spool.close()


class FsspecBackend:
    """Any fsspec URL.

    `storage_options` go to the fsspec file system (for S3: `endpoint_url`, `key`,
    `secret`, `config_kwargs`, ...); fsspec's own configuration (`FSSPEC_S3='{...}'`)
    applies too. Listings are not cached: other processes add and remove blobs.
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
            fail(self.url, operation, path, exc)

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
            fail(self.url, "check", f"{len(paths)} paths", exc)
        for path, answer in zip(paths, answers, strict=True):
            if isinstance(answer, BaseException) and not isinstance(answer, FileNotFoundError):
                fail(self.url, "check", path, answer)
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

    def put_bytes(self, path: str, data: bytes) -> None:
        spool = _Spool()
        try:
            spool.write(data)
            self.put_spool(path, spool)
        finally:
            spool.close()

    def put_spool(self, path: str, spool: _Spool) -> None:
        """Publish spooled bytes at `path`: one put on object stores, else put then move."""
        if self.object_store:
            self._put(path, spool)
            return
        tmp = f"{TMP_DIR}/{uuid.uuid4().hex}"
        self._put(tmp, spool)
        self._makedirs(self._full(path))
        self._call("publish", path, "mv", self._full(tmp), self._full(path))

    def _put(self, path: str, spool: _Spool) -> None:
        full = self._full(path)
        self._makedirs(full)
        if spool.file is not None:
            spool.file.flush()
        if not getattr(self.fs, "async_impl", False):
            if spool.memory is not None:
                self._call("write", path, "pipe_file", full, bytes(spool.memory))
            else:
                assert spool.file is not None
                self._call("write", path, "put_file", spool.file.name, full)
            return
        if spool.memory is not None:
            data = bytes(spool.memory)
            self._await("write", path, lambda: self.fs._pipe_file(full, data), spool.size)
        else:
            assert spool.file is not None
            name = spool.file.name
            self._await("write", path, lambda: self.fs._put_file(name, full), spool.size)

    def _await(
        self,
        operation: str,
        path: str,
        make: Callable[[], Coroutine[Any, Any, Any]],
        size: int,
    ) -> None:
        deadline = remote_timeout() + size * SECONDS_PER_BYTE

        async def bounded() -> None:
            await asyncio.wait_for(make(), deadline)

        future = asyncio.run_coroutine_threadsafe(bounded(), self.fs.loop)
        try:
            future.result()
        except (asyncio.TimeoutError, concurrent.futures.TimeoutError):
            fail(self.url, operation, path, TimeoutError(f"no answer within {deadline:.0f} s"))
        except Exception as exc:  # noqa: BLE001  # see _call
            fail(self.url, operation, path, exc)

    def _makedirs(self, full: str) -> None:
        if self.object_store:
            return  # prefixes need no creation
        parent = full.rsplit("/", 1)[0]
        with contextlib.suppress(FileExistsError, NotImplementedError):
            self._call("create a folder for", parent, "makedirs", parent, exist_ok=True)

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
