"""Closing the registries a test opened, so no test leaves database files or connections open.

`sd.registry.open` (and every function that takes the default registry) keeps one
`Registry` per URL for the life of the process, and a build recording into a plain
SQLite file keeps one `sqlite3` connection per URL beside it (`registry/_lite.py`). A
test's default registry lives in its own Stardag home, so without this each test would
leave its SQLite files (the database, `-wal` and `-shm`) or its PostgreSQL connections
open until the session ends. Invariant: after `close_opened_since(kept)`, the process
holds no registry but those whose URLs are in `kept`, and every one it let go is closed.
"""

from __future__ import annotations

import os
import sys

# The per-process caches of open registries: their modules, each with `_OPEN` (URL ->
# an object with `close()`) and `_OPEN_LOCK`. Looked up, never imported: a test that
# never touched the registry has nothing open.
CACHES = ("stardag.registry._db", "stardag.registry._lite")


def opened_urls() -> set[str]:
    """The URLs of the registries this process holds open now."""
    found: set[str] = set()
    for name in CACHES:
        module = sys.modules.get(name)
        if module is not None:
            found.update(module._OPEN)
    return found


def close_opened_since(kept: set[str]) -> None:
    """Close and forget every registry opened but those whose URLs are in `kept`."""
    for name in CACHES:
        module = sys.modules.get(name)
        if module is None:
            continue
        with module._OPEN_LOCK:
            dropped = [module._OPEN.pop(url) for url in list(module._OPEN) if url not in kept]
        for registry in dropped:
            registry.close()


def open_files_under(folder: str) -> list[str]:
    """The paths under `folder` that this process holds open (Linux's /proc)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed between the listing and the read
            continue
        if target.startswith(folder + os.sep):
            found.append(target)
    return sorted(found)
