"""Directory outputs: a task that produces a tree of files (a model checkpoint, a dataset).

A task returns `sd.Directory`. It writes its files into a staging folder that the
store gives it, and returns that:

```python
@sd.task
def checkpoint(steps: int) -> sd.Directory:
    out = sd.Directory.staging()          # an empty local folder (class API:
    (out.path / "weights.bin").write_bytes(b"...")   # self.target().staging_dir())
    (out.path / "config.json").write_text("{}")
    return out                            # any local folder works: sd.Directory(path)
```

Saving stores each file as a blob of its own (so a file that is identical across
outputs, or within one, is stored once) and then the tree as a *manifest* blob, the
task's output: `{"dirs": [...], "files": [{"digest", "path", "size"}], "format": ...}`,
sorted and compact, so an identical tree has an identical digest. A staging folder
is removed once stored; a folder you passed yourself is left alone.

Loading gives back an `sd.Directory` that holds only the manifest. Read it in place,
one verified file at a time (`names()`, `open(name)`: seekable from a store on local
disk, streamed from others; `read_bytes(name)`), or
materialize it on local disk: `path` (once, into `$STARDAG_HOME/checkouts/<digest>`) or
`materialize(dest)`. A checkout is read-only, and every file in it carries one fixed
modification time: a checkout found changed (a file written, added or removed) is
restored from the store before it is used again, and `stardag verify` re-hashes every
file of every checkout against its manifest. A loaded directory may be returned by
another task as it is: its manifest is reused, and its files copied (verified) if
that task's store is another one.

A task is complete only when its manifest and every file blob are stored. Manifest
paths are relative POSIX paths; one that could escape the folder (`..`, absolute,
empty parts) makes the manifest invalid (`SerializationError`).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from stardag import _config, _hashing
from stardag._errors import SerializationError, StardagError
from stardag.store._backends import LocalBackend
from stardag.store._manifest import FileEntry, Manifest, safe_path
from stardag.store._store import Store, store_for

logger = logging.getLogger("stardag")

COPY_STEP = 4 << 20
CHECKOUTS = "checkouts"  # under the Stardag home
# Every file of a checkout carries this mtime (2000-01-01T00:00:00Z): a write to one
# changes it, which the next use notices. Changing it only re-checks-out old checkouts.
CHECKOUT_MTIME_NS = 946_684_800 * 10**9


class Directory:
    """A tree of files: a local folder to store, or a stored one to read.

    `sd.Directory(path)` wraps a local folder; `sd.Directory.staging()` makes a new
    empty one in the store. A loaded `Directory` reads from the store until
    materialized (`path`, `materialize()`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._local: Path | None = Path(path)
        self._owned = False
        self._manifest: Manifest | None = None
        self._digest: str | None = None
        self._store: Store | None = None

    @classmethod
    def staging(cls, root_key: str = _config.DEFAULT_TARGET_ROOT_KEY) -> Directory:
        """A new empty folder, given by the store of `root_key`, to write files into.

        Stored, it is removed; if the task fails it stays under the store's `tmp/`.
        """
        return cls.staging_in(store_for(_config.target_root(root_key)))

    @classmethod
    def staging_in(cls, store: Store) -> Directory:
        """A new empty folder given by `store` (see `staging`)."""
        directory = cls(store.staging_dir())
        directory._owned = True
        return directory

    @classmethod
    def stored(cls, manifest: Manifest, digest: str, store: Store) -> Directory:
        """A directory output in `store`, described by its manifest."""
        directory = cls.__new__(cls)
        directory._local, directory._owned = None, False
        directory._manifest, directory._digest, directory._store = manifest, digest, store
        return directory

    @property
    def manifest(self) -> Manifest | None:
        """The stored tree (None for a local folder not stored yet)."""
        return self._manifest

    @property
    def digest(self) -> str | None:
        """The manifest's digest: the output's digest (None for a local folder)."""
        return self._digest

    @property
    def path(self) -> Path:
        """The folder on local disk (a stored one is checked out once, read-only)."""
        if self._local is None:
            self._local = self._checkout()
        return self._local

    def _checkout(self) -> Path:
        assert self._digest is not None and self._manifest is not None
        cache = checkout_path(self._digest)
        if cache.is_dir():
            if checkout_intact(cache, self._manifest):
                return cache
            logger.warning("checkout %s was changed on disk: restoring it from the store", cache)
            remove_checkout(cache)
        return self._materialize(cache, seal=True)

    def __fspath__(self) -> str:
        return str(self.path)

    def names(self) -> list[str]:
        """Every file's relative POSIX path, sorted."""
        if self._manifest is not None:
            return sorted(f.path for f in self._manifest.files)
        return sorted(name for name, _full in _walk(self.path))

    def open(self, name: str) -> IO[bytes]:
        """A binary stream over one file, verified; seekable where the store is local disk.

        From a store on local disk the file is decoded and verified first, into an
        unnamed temporary file beside the blobs, so it seeks like any open file;
        from another backend it streams (forward only), verified as it is read.
        """
        if self._manifest is None or self._local is not None:
            return open(self.path / _safe_name(name), "rb")  # the caller closes it
        assert self._store is not None
        entry = self._entry(name)  # the read stops soon past its size: no bomb inflates
        reader = self._store.open_blob(entry.digest, size=entry.size)
        if not isinstance(self._store.backend, LocalBackend):
            return io.BufferedReader(reader)
        return _decoded(reader, Path(self._store.backend.root, "tmp"))

    def read_bytes(self, name: str) -> bytes:
        """One file's bytes."""
        with self.open(name) as f:
            return f.read()

    def _entry(self, name: str) -> FileEntry:
        assert self._manifest is not None
        for entry in self._manifest.files:
            if entry.path == name:
                return entry
        raise KeyError(f"no file {name!r} in directory output {self._digest}")

    def materialize(self, dest: str | os.PathLike[str]) -> Path:
        """Write the tree to `dest` (absent or empty), verified, whole or not at all."""
        return self._materialize(Path(dest), seal=False)

    def _materialize(self, dest: Path, *, seal: bool) -> Path:
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise StardagError(f"cannot materialize a directory output into {dest}: not empty")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex}"
        try:
            self._write_tree(staging)
            if seal:
                _seal(staging)
            try:
                os.rename(staging, dest)
            except OSError:
                if not (dest.is_dir() and self._local is None and dest.name == self._digest):
                    raise
                remove_checkout(staging)  # another process materialized it first
        except BaseException:
            remove_checkout(staging)
            raise
        return dest

    def _write_tree(self, root: Path) -> None:
        root.mkdir()
        if self._manifest is None:
            shutil.copytree(self.path, root, dirs_exist_ok=True)
            return
        assert self._store is not None
        for folder in self._manifest.dirs:
            (root / folder).mkdir(parents=True, exist_ok=True)
        for entry in self._manifest.files:
            target = root / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            reader = self._store.open_blob(entry.digest, size=entry.size)
            with reader, open(target, "wb") as out:
                buffer = bytearray(COPY_STEP)
                while got := reader.readinto(buffer):
                    out.write(memoryview(buffer)[:got])

    def __repr__(self) -> str:
        if self._manifest is not None:
            return f"Directory(<{len(self._manifest.files)} files, {self._digest}>)"
        return f"Directory({str(self._local)!r})"


def checkouts_root() -> Path:
    """The folder of every checkout: `$STARDAG_HOME/checkouts`."""
    return Path(_config.stardag_home(), CHECKOUTS)


def checkout_path(digest: str) -> Path:
    """Where a stored directory output with this manifest digest is checked out."""
    return checkouts_root() / digest


def _seal(root: Path) -> None:
    """Make a checkout read-only, every file with the fixed checkout mtime."""
    for _rel, full in _walk(root):
        os.utime(full, ns=(CHECKOUT_MTIME_NS, CHECKOUT_MTIME_NS))
        os.chmod(full, 0o444)
    for dirpath, _dirs, _files in os.walk(root, topdown=False):
        os.chmod(dirpath, 0o555)


def remove_checkout(root: Path) -> None:
    """Delete a (read-only) checkout or staging folder, if it exists."""
    if not root.exists():
        return
    for dirpath, _dirs, _files in os.walk(root):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(root, ignore_errors=True)


def checkout_intact(root: Path, manifest: Manifest) -> bool:
    """Whether a checkout holds exactly its files, none written since (size and mtime)."""
    expected = {entry.path: entry.size for entry in manifest.files}
    found: dict[str, int] = {}
    try:
        for rel, full in _walk(root):
            stat = full.stat()
            if stat.st_mtime_ns != CHECKOUT_MTIME_NS:
                return False
            found[rel] = stat.st_size
    except (OSError, SerializationError):
        return False
    return found == expected


def checkout_changes(root: Path, manifest: Manifest) -> list[str]:
    """How a checkout differs from its manifest, every file re-hashed; [] if it does not."""
    expected = {entry.path: entry for entry in manifest.files}
    try:
        found = dict(_walk(root))
    except (OSError, SerializationError) as exc:
        return [f"unreadable: {exc}"]
    changes = [f"{p} is missing" for p in sorted(expected.keys() - found.keys())]
    changes += [f"{p} is not part of the output" for p in sorted(found.keys() - expected.keys())]
    for rel in sorted(expected.keys() & found.keys()):
        try:
            digest = _hash_file(found[rel])
        except OSError as exc:
            changes.append(f"{rel} is unreadable: {exc}")
            continue
        if digest != expected[rel].digest:
            changes.append(f"{rel} was changed")
    return changes


def _hash_file(path: Path) -> str:
    hasher = _hashing.new_hasher()
    buffer = bytearray(COPY_STEP)
    with open(path, "rb") as f:
        while got := f.readinto(buffer):
            hasher.update(memoryview(buffer)[:got])
    return str(hasher.hexdigest())


def _decoded(reader: Any, folder: Path) -> IO[bytes]:
    """A blob's bytes, verified, in an unnamed temporary file at its start."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115  # handed to the caller, open
    try:
        with reader:
            buffer = bytearray(COPY_STEP)
            while got := reader.readinto(buffer):
                copy.write(memoryview(buffer)[:got])
        copy.seek(0)
    except BaseException:
        copy.close()
        raise
    return copy


def _safe_name(name: str) -> str:
    try:
        return safe_path(name)
    except ValueError as exc:
        raise KeyError(str(exc)) from None


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative POSIX path, full path) of every file under `root`, sorted."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        full = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from ((f"{entry.name}/{rel}", path) for rel, path in _walk(full))
        elif entry.is_dir():
            raise SerializationError(f"{full} is a link to a folder; only files may be links")
        elif entry.is_file():
            yield entry.name, full
        else:
            raise SerializationError(f"{full} is not a regular file or folder")


def _empty_dirs(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if not dirnames and not filenames and Path(dirpath) != root:
            found.append(Path(dirpath).relative_to(root).as_posix())
    return found


class DirectorySerializer:
    """`sd.Directory`: each file a blob, the tree a manifest blob (needs the store)."""

    name = "directory"

    def __init__(self, store: Store | None = None) -> None:
        self.store = store

    def bind(self, store: Store) -> DirectorySerializer:
        """This serializer writing to and reading from `store`."""
        return DirectorySerializer(store)

    def _bound(self) -> Store:
        if self.store is None:
            raise SerializationError("a Directory is stored through a store (Output.save)")
        return self.store

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        store = self._bound()
        if not isinstance(value, Directory):
            raise SerializationError(f"expected sd.Directory, got {type(value).__qualname__}")
        if value.manifest is not None and value._local is None:
            manifest = _reuse(value, store)
        else:
            manifest = _ingest(value.path, store)
        sink.write(manifest.to_json())
        if value._owned:
            shutil.rmtree(value.path, ignore_errors=True)

    def load(self, source: IO[bytes]) -> Any:
        store = self._bound()
        data = source.read()
        digest = _hashing.digest_bytes(data)
        return Directory.stored(Manifest.from_json(data, digest), digest, store)


def _ingest(root: Path, store: Store) -> Manifest:
    if not root.is_dir():
        raise SerializationError(f"directory output {root} is not a folder")
    files = []
    for rel, full in _walk(root):
        try:
            with open(full, "rb") as f:
                files.append(FileEntry(rel, *_store_file(f, store)))
        except OSError as exc:
            raise SerializationError(f"cannot read {full}: {exc}") from exc
    return Manifest(tuple(files), tuple(_empty_dirs(root)))


def _store_file(f: IO[bytes], store: Store) -> tuple[int, str]:
    writer = store.writer()
    try:
        buffer = bytearray(COPY_STEP)
        while got := f.readinto(buffer):  # type: ignore[attr-defined]  # binary files have readinto
            writer.write(memoryview(buffer)[:got])
        info = writer.finish()
    except BaseException:
        writer.abort()
        raise
    return info.size_raw, info.digest


def _reuse(value: Directory, store: Store) -> Manifest:
    assert value.manifest is not None and value._store is not None
    if value._store.url != store.url:
        for digest in dict.fromkeys(f.digest for f in value.manifest.files):
            value._store.copy_blob(digest, store)
    return value.manifest
