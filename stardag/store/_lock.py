"""The store's gc lock: a builder's "this output is complete" and gc's delete never interleave.

A builder that finds an output complete (or writes bytes a blob already holds)
refreshes the files' mtime, which counts as a write for gc, while it holds the lock
*shared*; gc's sweep re-checks each candidate's mtime and deletes it while holding
the lock *exclusive*. So either gc deletes first and the builder sees the output
missing (and rebuilds it), or the builder refreshes first and gc's re-check keeps it:
never "complete" for a builder followed by a delete under it.

On local disk the lock is `flock` on `<root>/gc.lock` (the kernel drops it when a
process dies, so a killed gc or builder never leaves it held). Threads of one process
share one shared hold, counted; the file is open only while it is held. Other backends
have no lock that spans machines: there gc relies on what it re-checks (mtimes where
the backend keeps them, the registry's record of use) and on the grace period.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover  # not on Windows: no lock, as on object stores
    fcntl = None  # type: ignore[assignment]  # checked before use

LOCK_NAME = "gc.lock"


class StoreLock:
    """Shared for builders, exclusive for gc's sweep; a no-op where there is no lock file."""

    def __init__(self, root: str | None) -> None:
        self._path = None if root is None or fcntl is None else os.path.join(root, LOCK_NAME)
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._holders = 0
        _LOCKS.add(self)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock shared (with every other builder) for the block."""
        with self._mutex:
            if self._holders == 0:
                self._fd = self._open()  # opened per hold: a store object keeps no descriptor
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_SH)
            self._holders += 1
        try:
            yield
        finally:
            with self._mutex:
                self._holders -= 1
                if self._holders == 0 and self._fd is not None:
                    os.close(self._fd)  # also releases the lock
                    self._fd = None

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the lock alone for the block (gc's re-check and delete)."""
        fd = self._open()
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fd is not None:
                os.close(fd)  # also releases the lock

    def file_time(self) -> float | None:
        """Now by the file system's clock (the lock file touched), or None without one.

        File times come from a coarse clock that may lag `time.time()` by a few
        milliseconds, so "written since" is judged against this, never against the
        process's clock.
        """
        fd = self._open()
        if fd is None:
            return None
        try:
            os.utime(fd)
            return os.fstat(fd).st_mtime
        except OSError:
            return None
        finally:
            os.close(fd)

    def _open(self) -> int | None:
        """A descriptor of the lock file; None where the store cannot hold one."""
        if self._path is None:
            return None
        for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
            try:
                return os.open(self._path, flags | os.O_CLOEXEC, 0o666)
            except FileNotFoundError:
                return None  # no store here yet: nothing in it to delete or to reuse
            except PermissionError:
                continue  # a read-only store: flock works on a read-only descriptor
        return None

    def _after_fork(self) -> None:
        # The child's copy of the descriptor shares the parent's lock: forget it.
        self._mutex = threading.Lock()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._holders = None, 0


_LOCKS: weakref.WeakSet[StoreLock] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for lock in list(_LOCKS):
        lock._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
