"""Targets by the released stardag's names: `from stardag.target import ...` keeps working.

The invariant: this module only re-exports; every class lives in `stardag.task._target`
(files, in-memory files, directory targets) or `stardag.store` (serializers, under
`stardag.target.serialize`), so there is one implementation of each.
"""

from stardag import FileSystemTarget
from stardag.task._target import (
    DirectoryTarget,
    FileTarget,
    InMemoryFileTarget,
    InMemoryTarget,
    LocalFileTarget,
    get_directory_target,
    get_file_target,
)

RemoteFileTarget = FileTarget
"""The released stardag's remote file target: ours is a `FileTarget` with an fsspec URL."""

__all__ = [
    "DirectoryTarget",
    "FileSystemTarget",
    "FileTarget",
    "InMemoryFileTarget",
    "InMemoryTarget",
    "LocalFileTarget",
    "RemoteFileTarget",
    "get_directory_target",
    "get_file_target",
]
