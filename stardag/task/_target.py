"""File targets: a plain file at a path under a root, for `sd.TargetTask`.

`open("w")`/`open("wb")` (and `proxy_path("w")`, `open_aio("w")`) write to a
temporary name and publish on a clean close (rename on local disk, one put
elsewhere), so a reader never sees half a file and a failed write leaves nothing
behind. Beside files: `InMemoryFileTarget` (for tests) and `DirectoryTarget`, a
folder of file targets that exists once `mark_done()` has written its flag file,
as the released stardag has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tempfile
import typing
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Any, ClassVar, Generic, TypeVar

from stardag import _config

T = TypeVar("T")


class FileTarget:
    """A file at `uri` (a local path or any fsspec URL)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @property
    def path(self) -> str:
        """The target's path or URL."""
        return self.uri

    def exists(self) -> bool:
        """Whether the file exists."""
        import fsspec

        fs, path = fsspec.core.url_to_fs(self.uri)
        return bool(fs.exists(path))

    async def exists_aio(self) -> bool:
        """Async `exists()`."""
        return self.exists()

    @contextlib.contextmanager
    def open(self, mode: str = "r") -> Iterator[IO[Any]]:
        """Open for reading (`r`, `rb`) or atomic writing (`w`, `wb`)."""
        if mode not in ("r", "rb", "w", "wb"):
            raise ValueError(f"unsupported mode {mode!r}; use r, rb, w or wb")
        if mode.startswith("r"):
            with self._open_read(mode) as handle:
                yield handle
            return
        with self._atomic_write() as raw:
            if mode == "wb":
                yield raw
                return
            text = io.TextIOWrapper(raw, encoding="utf-8")
            yield text
            text.flush()

    @contextlib.asynccontextmanager
    async def open_aio(self, mode: str = "r") -> AsyncIterator[AsyncHandle]:
        """`open()` for async code: `async with target.open_aio("w") as f: await f.write(...)`.

        The file work runs on a helper thread, so the event loop is never blocked.
        """
        manager = self.open(mode)
        handle = await asyncio.to_thread(manager.__enter__)
        try:
            yield AsyncHandle(handle)
        except BaseException as exc:
            if not await asyncio.to_thread(manager.__exit__, type(exc), exc, exc.__traceback__):
                raise
        else:
            await asyncio.to_thread(manager.__exit__, None, None, None)

    @contextlib.contextmanager
    def proxy_path(self, mode: str) -> Iterator[Path]:
        """A local path standing for the target, for libraries that want a file name.

        `"r"`: the target's content at a local path (downloaded first if remote).
        `"w"`: an empty local path; what is written there is published to the
        target when the block ends without an error.
        """
        if mode not in ("r", "w"):
            raise ValueError(f"proxy_path mode must be 'r' or 'w', got {mode!r}")
        with tempfile.TemporaryDirectory(prefix="stardag-proxy-") as scratch:
            local = Path(scratch) / (self.uri.rstrip("/").rsplit("/", 1)[-1] or "file")
            if mode == "r":
                with self.open("rb") as source, open(local, "wb") as sink:
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
                yield local
                return
            yield local
            with open(local, "rb") as source, self.open("wb") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)

    @contextlib.asynccontextmanager
    async def proxy_path_aio(self, mode: str) -> AsyncIterator[Path]:
        """Async `proxy_path()`."""
        manager = self.proxy_path(mode)
        path = await asyncio.to_thread(manager.__enter__)
        try:
            yield path
        except BaseException as exc:
            if not await asyncio.to_thread(manager.__exit__, type(exc), exc, exc.__traceback__):
                raise
        else:
            await asyncio.to_thread(manager.__exit__, None, None, None)

    def _open_read(self, mode: str) -> IO[Any]:
        import fsspec

        return fsspec.open(self.uri, mode).open()  # type: ignore[no-any-return]  # fsspec is untyped

    @contextlib.contextmanager
    def _atomic_write(self) -> Iterator[IO[bytes]]:
        import fsspec

        buffer = io.BytesIO()
        yield typing.cast(IO[bytes], _NonClosing(buffer))
        fs, path = fsspec.core.url_to_fs(self.uri)
        parent = path.rsplit("/", 1)[0]
        with contextlib.suppress(FileExistsError, NotImplementedError):
            fs.makedirs(parent, exist_ok=True)
        fs.pipe_file(path, buffer.getvalue())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileTarget) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)


class LocalFileTarget(FileTarget):
    """A file on local disk (`~` is expanded), written by temp file then rename."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(os.path.abspath(os.path.expanduser(os.fspath(path))))

    @property
    def path(self) -> Path:  # type: ignore[override]  # a Path here, as the released stardag has it
        """The file's path."""
        return Path(self.uri)

    @contextlib.contextmanager
    def proxy_path(self, mode: str) -> Iterator[Path]:
        """The file itself to read; a temporary name beside it, renamed on success, to write."""
        if mode == "r":
            yield Path(self.uri)
        elif mode == "w":
            directory = os.path.dirname(self.uri)
            os.makedirs(directory, exist_ok=True)
            tmp = Path(directory, f".{os.path.basename(self.uri)}.tmp-{uuid.uuid4().hex}")
            try:
                yield tmp
                os.replace(tmp, self.uri)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        else:
            raise ValueError(f"proxy_path mode must be 'r' or 'w', got {mode!r}")

    def exists(self) -> bool:
        return os.path.exists(self.uri)

    def _open_read(self, mode: str) -> IO[Any]:
        return open(self.uri, mode, encoding="utf-8" if mode == "r" else None)

    @contextlib.contextmanager
    def _atomic_write(self) -> Iterator[IO[bytes]]:
        directory = os.path.dirname(self.uri)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{os.path.basename(self.uri)}.tmp-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as handle:
                yield typing.cast(IO[bytes], _NonClosing(handle))
            os.replace(tmp, self.uri)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


class AsyncHandle:
    """An open target file for async code: awaitable `read`/`write`, run off the loop."""

    def __init__(self, handle: IO[Any]) -> None:
        self._handle = handle

    async def read(self, size: int = -1) -> Any:
        """Read up to `size` (all by default)."""
        return await asyncio.to_thread(self._handle.read, size)

    async def write(self, data: Any) -> int:
        """Write `data`; returns what the file's write returns."""
        return int(await asyncio.to_thread(self._handle.write, data))


class InMemoryFileTarget(FileTarget):
    """A file held in this process's memory, by URI: for tests (as in the released stardag).

    All instances share one class-level dict, `uri_to_bytes`; `clear_targets()`
    empties it and `with InMemoryFileTarget.cleared():` empties it around a block.
    """

    uri_to_bytes: ClassVar[dict[str, bytes]] = {}

    @classmethod
    def clear_targets(cls) -> None:
        """Forget every in-memory file."""
        cls.uri_to_bytes = {}

    @classmethod
    @contextlib.contextmanager
    def cleared(cls) -> Iterator[dict[str, bytes]]:
        """Empty the in-memory files before and after the block."""
        cls.clear_targets()
        try:
            yield cls.uri_to_bytes
        finally:
            cls.clear_targets()

    def exists(self) -> bool:
        return self.uri in type(self).uri_to_bytes

    def _open_read(self, mode: str) -> IO[Any]:
        try:
            data = type(self).uri_to_bytes[self.uri]
        except KeyError:
            raise FileNotFoundError(f"no in-memory file {self.uri}") from None
        raw = io.BytesIO(data)
        return io.TextIOWrapper(raw, encoding="utf-8") if mode == "r" else raw

    @contextlib.contextmanager
    def _atomic_write(self) -> Iterator[IO[bytes]]:
        buffer = io.BytesIO()
        yield typing.cast(IO[bytes], _NonClosing(buffer))
        type(self).uri_to_bytes[self.uri] = buffer.getvalue()


class InMemoryTarget(Generic[T]):
    """A value held in this process's memory by key, with `save`/`load`: for tests.

    All instances share one class-level dict, `key_to_object`.
    """

    key_to_object: ClassVar[dict[Any, Any]] = {}

    def __init__(self, key: Any) -> None:
        self.key = key

    @classmethod
    def clear_targets(cls) -> None:
        """Forget every in-memory value."""
        cls.key_to_object = {}

    @classmethod
    @contextlib.contextmanager
    def cleared(cls) -> Iterator[dict[Any, Any]]:
        """Empty the in-memory values before and after the block."""
        cls.clear_targets()
        try:
            yield cls.key_to_object
        finally:
            cls.clear_targets()

    def exists(self) -> bool:
        """Whether a value was saved under the key."""
        return self.key in type(self).key_to_object

    def save(self, obj: T) -> None:
        """Keep `obj` under the key."""
        type(self).key_to_object[self.key] = obj

    def load(self) -> T:
        """The value saved under the key."""
        return typing.cast(T, type(self).key_to_object[self.key])

    async def exists_aio(self) -> bool:
        """Async `exists()`."""
        return self.exists()

    async def save_aio(self, obj: T) -> None:
        """Async `save()`."""
        self.save(obj)

    async def load_aio(self) -> T:
        """Async `load()`."""
        return self.load()


class DirectoryTarget:
    """A folder of file targets that exists once `mark_done()` has run.

    Sub-targets come from `get_sub_target(relpath)` or `target / relpath`; each is
    made by `prototype` (a file target class). `mark_done()` writes the list of
    sub-targets handed out (`<uri>._SUB_KEYS`) and then the flag file (`<uri>._DONE`),
    so a half-written folder never counts as complete. For a directory output in
    the content-addressed store, return `sd.Directory` from a task instead.
    """

    def __init__(self, uri: str, prototype: Callable[[str], FileTarget] | None = None) -> None:
        self.uri = uri.removesuffix("/") + "/"
        self.prototype: Callable[[str], FileTarget] = prototype or _prototype_for(uri)
        self._flag_target = self.prototype(self.uri[:-1] + "._DONE")
        self._sub_keys: set[str] = set()

    def exists(self) -> bool:
        """Whether `mark_done()` has run."""
        return self._flag_target.exists()

    async def exists_aio(self) -> bool:
        """Async `exists()`."""
        return await asyncio.to_thread(self.exists)

    def get_sub_target(self, relpath: str) -> FileTarget:
        """The file target at `relpath` inside the folder."""
        if relpath.startswith("/"):
            raise ValueError(f"sub-target path {relpath!r} must be relative (no leading '/')")
        self._sub_keys.add(relpath)
        return self.prototype(self.uri + relpath)

    def __truediv__(self, relpath: str) -> FileTarget:
        return self.get_sub_target(relpath)

    def sub_keys_target(self) -> FileTarget:
        """The file that lists the sub-targets handed out (written by `mark_done()`)."""
        return self.prototype(self.uri[:-1] + "._SUB_KEYS")

    def mark_done(self) -> None:
        """Record the sub-targets, then the flag that makes the folder exist."""
        with self.sub_keys_target().open("w") as handle:
            handle.write("\n".join(sorted(self._sub_keys)))
        with self._flag_target.open("w") as handle:
            handle.write("")

    async def mark_done_aio(self) -> None:
        """Async `mark_done()`."""
        await asyncio.to_thread(self.mark_done)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


def _prototype_for(uri: str) -> Callable[[str], FileTarget]:
    return FileTarget if "://" in uri else LocalFileTarget


class _NonClosing(io.RawIOBase):
    """Lets a text wrapper close without closing the file we still have to publish."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self._inner = inner

    def writable(self) -> bool:
        return True

    def write(self, data: Any, /) -> int:
        return self._inner.write(data)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.flush()
        super().close()


def get_file_target(
    relpath: str, target_root_key: str = _config.DEFAULT_TARGET_ROOT_KEY
) -> FileTarget:
    """A file target at `relpath` under the root configured for `target_root_key`."""
    root = _config.target_root(target_root_key).rstrip("/")
    if "://" not in root:
        return LocalFileTarget(os.path.join(root, relpath))
    return FileTarget(f"{root}/{relpath.lstrip('/')}")


def get_target(
    relpath: str, task: Any = None, *, target_root_key: str = _config.DEFAULT_TARGET_ROOT_KEY
) -> FileTarget:
    """The older spelling of `get_file_target` (the task argument is accepted and unused)."""
    return get_file_target(relpath, target_root_key=target_root_key)


def get_directory_target(
    relpath: str, target_root_key: str = _config.DEFAULT_TARGET_ROOT_KEY
) -> DirectoryTarget:
    """A directory target at `relpath` under the root configured for `target_root_key`.

    A `relpath` that is already a full URL or absolute path is used as is.
    """
    if "://" in relpath or os.path.isabs(os.path.expanduser(relpath)):
        return DirectoryTarget(relpath)
    root = _config.target_root(target_root_key).rstrip("/")
    if "://" not in root:
        return DirectoryTarget(os.path.join(root, relpath))
    return DirectoryTarget(f"{root}/{relpath.lstrip('/')}")
