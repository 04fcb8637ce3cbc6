"""Closing the registries a test opened, so no test leaves database files or connections open.

`sd.registry.open` (and every function that takes the default registry) keeps one
`Registry` per URL for the life of the process. A test's default registry lives in
its own Stardag home, so without this each test would leave its SQLite files (the
database, `-wal` and `-shm`) or its PostgreSQL connections open until the session
ends. Invariant: after `close_opened_since(kept)`, the process holds no registry
but those whose URLs are in `kept`, and every one it let go is closed.
"""

from __future__ import annotations

import os
import sys


def opened_urls() -> set[str]:
    """The URLs of the registries this process holds open now."""
    db = sys.modules.get("stardag.registry._db")
    return set(db._OPEN) if db is not None else set()


def close_opened_since(kept: set[str]) -> None:
    """Close and forget every registry opened but those whose URLs are in `kept`."""
    db = sys.modules.get("stardag.registry._db")
    if db is None:  # nothing imported the registry, so nothing opened one
        return
    with db._OPEN_LOCK:
        dropped = [db._OPEN.pop(url) for url in list(db._OPEN) if url not in kept]
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
