"""Write-through: a build listener that pushes each output to a remote as it is produced.

It only reacts to build events and calls `push`, so the remote part never learns about
builds. Pushes are best effort (a cache is optional): a failed push is logged and
counted, never fails the build; the build's end waits for the pushes in flight.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from stardag.build._events import BuildEvent, EventKind
from stardag.remote import _config as _remotes_config
from stardag.remote._sharing import push
from stardag.store._store import Store

__all__ = ["WriteThrough", "write_through"]

logger = logging.getLogger("stardag.remote")


class WriteThrough:
    """A build listener that pushes each output to a remote as soon as it is produced.

    Pushes run on one background thread (a slow remote does not hold up the build);
    the build's end waits for them. Failures are logged and counted in `.failed`.
    Builds add one by themselves when the active remote has `write_through` set.
    """

    def __init__(self, remote: str | None = None, local: Store | str | None = None) -> None:
        self.remote = _remotes_config.resolve(remote)
        self.local = local
        self.pushed = 0
        self.failed: list[tuple[str, BaseException]] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="stardag-write-through")

    def handle(self, event: BuildEvent) -> None:
        """Queue a push for each output written; at the build's end, wait for them."""
        if event.kind is EventKind.TASK_COMPLETED and event.record is not None:
            self._pool.submit(self._push, event.record.task_id, _local_of(event, self.local))
        elif event.kind is EventKind.BUILD_ENDED:
            self._pool.shutdown(wait=True)
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="stardag-write-through")

    def _push(self, task_id: str, local: Store | str | None) -> None:
        try:
            push([task_id], remote=self.remote.url, local=local)
            self.pushed += 1
        except Exception as exc:  # noqa: BLE001  # a cache is optional: log, keep building
            self.failed.append((task_id, exc))
            logger.warning(
                "write-through of task %s to %s failed: %s", task_id, self.remote.name, exc
            )


def write_through() -> WriteThrough | None:
    """A `WriteThrough` for a build when the active remote is set to write through."""
    remote = _remotes_config.active()
    if remote is None or not remote.write_through:
        return None
    return WriteThrough(remote.url)


def _local_of(event: BuildEvent, local: Store | str | None) -> Store | str | None:
    if local is not None or event.task is None:
        return local
    return event.task.target().store  # type: ignore[attr-defined, no-any-return]  # sd.Task
