"""File targets: a plain file at a path under a root, for `sd.TargetTask`.

`open("w")`/`open("wb")` write to a temporary name and publish on a clean
close (rename on local disk, one put elsewhere), so a reader never sees half a
file and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import typing
import uuid
from collections.abc import Iterator
from typing import IO, Any

from stardag import _config


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
    """A file on local disk, written by temp file then rename."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(os.path.abspath(os.fspath(path)))

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
