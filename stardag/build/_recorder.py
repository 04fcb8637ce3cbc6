"""The build listener that records a build into the registry.

Per event the build pays one append to a list under a lock (`handle`), from
whichever thread emits it. A writer thread of the recorder's own turns events
into rows and writes them in short batched transactions: every `BATCH_EVENTS`
events or `FLUSH_SECONDS`, and at the end of the build, which waits for the
last batch, so the registry is complete when `sd.build` returns. A build thread
that finds `MAX_PENDING` events still waiting waits for the writer to take them:
on a busy machine the writer can fall behind, and every waiting event holds its
task's action record (memory would grow with the build instead of staying flat). The
writer thread is the only one that touches its SQLite connection.

The build row is written before the engine starts (`Recorder.start`): that
write is the check that the registry is writable, before any task runs. A build
that stops on bad settings (`ConfigError`, such as an unconfigured root key)
before it starts a task never happened: its build row is removed again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from stardag._errors import ConfigError, RegistryError
from stardag._version import __version__
from stardag.build import _recordproc
from stardag.build._events import BuildEvent, EventKind
from stardag.build._labels import current_labels
from stardag.build._recordproc import RecordingProcess
from stardag.build._rows import Facts, RowMaker, Writer, write_ops
from stardag.registry import _lite
from stardag.registry._environment import (
    Environment,
    GitState,
    current_environment,
    git_state,
    invocation,
    platform_name,
    python_version,
)
from stardag.registry._lite import LiteRegistry
from stardag.task._base import BaseTask

if TYPE_CHECKING:
    from stardag.registry._db import Registry

logger = logging.getLogger("stardag.registry")

BATCH_EVENTS = 2000
FLUSH_SECONDS = 0.25
# Events a build may queue before its threads wait for the writer: one batch fills while
# the one before is written. Three batches' worth let a lagging writer hold ~6,000 events
# and their records, plus the room its arena kept after the larger slices it took: ~8 MiB
# more peak memory in a 100,000-task build (measured with the thread writing the rows),
# for no gain in speed (the writer's work per event is the same; it only runs later).
MAX_PENDING = BATCH_EVENTS


class Recorder:
    """Records one build: a `BuildListener` with a writer thread behind it."""

    def __init__(self, registry: Registry | LiteRegistry, build_id: str) -> None:
        self.registry = registry
        self._ops = write_ops(registry)
        self.build_id = build_id
        lock = threading.RLock()
        self._cond = threading.Condition(lock)  # the writer waits here for events
        self._room = threading.Condition(lock)  # build threads wait here for the writer
        self._events: list[BuildEvent] = []
        self._ended = False
        self._build_error: BaseException | None = None
        self._started_a_task = False
        self.failure: RegistryError | None = None
        self._writer = Writer(registry, RowMaker(build_id))
        self._cwd = ""
        self._thread = threading.Thread(
            target=self._run, name=f"stardag-registry-{build_id[:8]}", daemon=True
        )

    @classmethod
    def start(
        cls, registry: Registry | str | None, build_id: str, roots: Sequence[BaseTask]
    ) -> Recorder:
        """Open the registry, write the build row (failing here if it cannot), and start.

        A plain SQLite file at this schema is written through `sqlite3` (`_lite`), so
        the build never imports SQLAlchemy; any other registry through `_db`.
        """
        opened = _for_recording(registry)
        recorder = cls(opened, build_id)
        recorder._begin([task.id for task in roots])
        recorder._thread.start()
        return recorder

    def _begin(self, root_ids: list[str]) -> None:
        who = invocation()
        self._cwd = who.cwd
        labels = current_labels()
        row = {
            "id": self.build_id,
            "started": time.time(),
            "status": "running",
            "roots": json.dumps(root_ids),
            "host": who.host,
            "username": who.username,
            "pid": who.pid,
            "argv": json.dumps(list(who.argv)),
            "cwd": who.cwd,
            "python_version": python_version(),
            "platform": platform_name(),
            "stardag_version": __version__,
            "labels": json.dumps(labels, sort_keys=True) if labels else None,
        }
        self.registry.write(lambda conn: self._ops.put_build(conn, row))

    # -- the listener side (build threads) ---------------------------------------------
    def handle(self, event: BuildEvent) -> None:
        """Buffer one event; at the end of the build, wait until everything is written."""
        with self._cond:
            self._events.append(event)
            if event.kind is EventKind.TASK_STARTED:
                self._started_a_task = True
            if event.kind is EventKind.BUILD_ENDED:
                self._ended = True
                self._cond.notify()
            elif len(self._events) >= BATCH_EVENTS:
                self._cond.notify()
                while len(self._events) >= MAX_PENDING and self._thread.is_alive():
                    self._room.wait(FLUSH_SECONDS)
        if event.kind is EventKind.BUILD_ENDED:
            self._thread.join()

    def note_error(self, error: BaseException) -> None:
        """The build itself raised: it ends as failed, whatever its tasks did."""
        self._build_error = error

    def close(self) -> None:
        """Stop the writer even if the build never said it ended (idempotent)."""
        with self._cond:
            self._ended = True
            self._cond.notify()
        self._thread.join()

    def check(self) -> None:
        """Raise the error that lost part of this build's record, if one did."""
        if self.failure is not None:
            raise self.failure

    # -- the writer side (its own thread) ----------------------------------------------
    def _run(self) -> None:
        # Read while the build checks what is complete: the code as the build began.
        setting: tuple[Environment, GitState] | None = None
        try:
            setting = current_environment(), git_state(self._cwd)
        except Exception as exc:  # noqa: BLE001  # reported at the end of the build
            self._fail(exc)
        facts_of = Facts(self.build_id)
        sink: Writer | RecordingProcess = self._writer
        booting: RecordingProcess | None = None  # started, not ready yet
        tried = False
        while True:
            events, ended = self._take()
            try:
                facts, extra = facts_of.of(events, self._build_error, self.registry)
            except Exception as exc:  # noqa: BLE001  # reported at the end of the build
                self._fail(exc)
                facts, extra = [], None
            if not tried and events and _recordproc.wanted(self.registry, events[-1].total):
                tried, booting = True, self._spawn()
            if booting is not None:
                sink, booting = self._hand_over(booting)
            sink.take(facts, extra, setting)
            setting = None
            if ended:
                if booting is not None:  # never ready: the thread recorded it all
                    booting.abandon()
                unstarted = not self._started_a_task
                failure = sink.finish(isinstance(self._build_error, ConfigError) and unstarted)
                if failure is not None:
                    self._fail(failure)
                return

    def _spawn(self) -> RecordingProcess | None:
        """A recording process starting up, or None (the thread goes on recording)."""
        assert isinstance(self.registry, LiteRegistry)
        try:
            return RecordingProcess.spawn(self.registry, self.build_id)
        except OSError as exc:
            logger.warning("recording in this process: no recording process (%s)", exc)
            return None

    def _hand_over(
        self, booting: RecordingProcess
    ) -> tuple[Writer | RecordingProcess, RecordingProcess | None]:
        """The sink from here on, and the process still starting up (or None)."""
        ready = booting.ready()
        if not ready:
            if ready is None:
                logger.warning("recording in this process: the recording process died")
                return self._writer, None
            return self._writer, booting
        if self._writer.failure is not None:
            self._fail(self._writer.failure)
        booting.begin(self._writer)
        return booting, None

    def _take(self) -> tuple[list[BuildEvent], bool]:
        with self._cond:
            if not self._ended and len(self._events) < BATCH_EVENTS:
                self._cond.wait(FLUSH_SECONDS)
            events, self._events = self._events, []
            self._room.notify_all()
            return events, self._ended

    def _fail(self, exc: BaseException) -> None:
        if self.failure is not None:
            return  # the first failure is the one to report
        self.failure = (
            exc
            if isinstance(exc, RegistryError)
            else RegistryError(f"recording build {self.build_id} failed: {exc!r}")
        )
        logger.error(
            "registry %s: recording of build %s is incomplete (%s); "
            "`sd.registry.reindex(root)` restores task, edge and output rows from the store",
            self.registry.safe_url,
            self.build_id,
            self.failure,
        )


def _for_recording(registry: Registry | str | None) -> Registry | LiteRegistry:
    """The registry a build records into: a `Registry` as given; for a URL or the default,
    the `LiteRegistry` where one serves (`_lite.open_lite`), else `_db`'s."""
    if registry is None or isinstance(registry, str):
        url = registry or _lite.plain_default_url()
        lite = _lite.open_lite(url) if url is not None else None
        if lite is not None:
            return lite
        from stardag.registry._db import resolve

        return resolve(url)
    return registry
