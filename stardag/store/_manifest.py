"""The manifest of a directory output: its files (path, size, blob digest) and empty folders.

A manifest is stored as a blob of deterministic JSON, so its digest names the whole tree.
Parsing validates it: every path is a relative POSIX path that cannot leave the folder
(no `..`, no absolute path, no empty part), and no path is both a file and a folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from stardag import _hashing
from stardag._errors import SerializationError

# NEVER CHANGE: part of every manifest, so of every directory output's digest.
MANIFEST_FORMAT = "stardag.directory/1"


@dataclass(frozen=True)
class FileEntry:
    """One file of a directory output: its relative POSIX path, size and blob digest."""

    path: str
    size: int
    digest: str


@dataclass(frozen=True)
class Manifest:
    """The tree of a directory output: its files and its empty folders, sorted."""

    files: tuple[FileEntry, ...]
    dirs: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        """The manifest as it is stored (deterministic)."""
        data = {
            "dirs": sorted(self.dirs),
            "files": [
                {"digest": f.digest, "path": f.path, "size": f.size}
                for f in sorted(self.files, key=lambda f: f.path)
            ],
            "format": MANIFEST_FORMAT,
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes, digest: str) -> Manifest:
        """Parse and validate a stored manifest (`SerializationError` if it is not one)."""
        try:
            raw = json.loads(data)
            if raw.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"format is {raw.get('format')!r}")
            files = tuple(_entry(f) for f in raw["files"])
            dirs = tuple(safe_path(d) for d in raw["dirs"])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SerializationError(f"directory manifest {digest} is invalid: {exc}") from None
        manifest = cls(files, dirs)
        manifest.check_tree(digest)
        return manifest

    def check_tree(self, digest: str) -> None:
        """No path twice, and no file where another path needs a folder."""
        paths = [f.path for f in self.files]
        folders = set(self.dirs)
        for path in [*paths, *self.dirs]:
            parts = path.split("/")
            folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        clash = len(set(paths)) != len(paths) or any(p in folders for p in paths)
        if clash:
            raise SerializationError(f"directory manifest {digest} is invalid: paths clash")


def _entry(raw: Any) -> FileEntry:
    path, size, digest = raw["path"], raw["size"], raw["digest"]
    if type(size) is not int or size < 0:
        raise ValueError(f"size {size!r} of {path!r} is not a non-negative integer")
    if not _hashing.is_hex_key(digest):
        raise ValueError(f"digest {digest!r} of {path!r} is not 64 lowercase hex characters")
    return FileEntry(safe_path(path), size, digest)


def safe_path(path: Any) -> str:
    """`path` if it is a relative POSIX path that stays inside its folder."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"path {path!r} is not a non-empty string")
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"path {path!r} could escape its folder")
    if "\\" in path or "\0" in path or ":" in parts[0]:
        raise ValueError(f"path {path!r} is not portable")
    return path
