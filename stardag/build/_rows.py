"""Build events in, registry rows out: what the recorder's writer thread computes.

Runs are written when a task finishes (computed, failed, skipped, cached or
interrupted); a task that started and never finished by the end of the build is
recorded as interrupted. A build that ends by KeyboardInterrupt (Ctrl-C) is
recorded as interrupted. Each task row is made once per build.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stardag.build._events import BuildEvent, EventKind
from stardag.build._executor import IN_PROCESS_NAME, here
from stardag.registry import _lite
from stardag.registry import _rowshape as _writes
from stardag.registry._environment import Environment, GitState
from stardag.registry._fingerprint import code_location, fingerprint
from stardag.registry._lite import LiteConnection, LiteRegistry
from stardag.remote._sharing import closure
from stardag.store._store import ActionRecord, store_for
from stardag.task._base import BaseTask, flatten_task_struct
from stardag.task._stored import Task

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from stardag.registry._db import Registry

logger = logging.getLogger("stardag.registry")

Row = dict[str, Any]
MAX_TEXT = 64 * 1024  # error messages and tracebacks are cut to this many characters


@dataclass
class BatchRows:
    """Everything one write transaction of the recorder puts in the registry."""

    build_id: str
    tasks: list[Row] = field(default_factory=list)
    edges: list[Row] = field(default_factory=list)
    runs: list[Row] = field(default_factory=list)
    outputs: list[Row] = field(default_factory=list)
    cached: list[BaseTask] = field(default_factory=list)
    fetches: list[Row] = field(default_factory=list)  # read-through hits (`_fetches`)
    build: Row = field(default_factory=dict)  # columns of the build row to update
    environment: Environment | None = None
    git: GitState | None = None

    def empty(self) -> bool:
        """Whether there is nothing to write."""
        parts = (self.tasks, self.edges, self.runs, self.outputs, self.build)
        return not any(parts) and self.environment is None

    def write(self, conn: Connection | LiteConnection, ops: Any = None) -> None:
        """Write every row in foreign-key order, in the caller's transaction.

        `ops`: the module whose functions write, `_writes` (SQLAlchemy, the default)
        or `_lite` (sqlite3, which takes no read-through fetches: see `Recorder`).
        """
        if ops is None:
            from stardag.registry import _writes as ops
        now = time.time()
        if self.environment is not None:
            ops.put_environment(conn, self.environment, now)
            values: Row = {"env_digest": self.environment.digest}
            if self.git is not None:
                values |= {"git_commit": self.git.commit, "git_dirty": self.git.dirty}
            ops.update_build(conn, self.build_id, values)
        ops.put_tasks(conn, self.tasks)
        ops.put_edges(conn, self.edges)
        ops.put_runs(conn, self.runs)
        ops.put_outputs(conn, self.outputs)
        if self.fetches:
            from stardag.registry import _fetches

            assert not isinstance(conn, LiteConnection), "`Recorder` sends fetches via `_db`"
            _fetches.write_fetches(conn, self.fetches)
        if self.cached:
            ops.touch_outputs(conn, [t.id for t in self.cached], now)
            ops.fill_cached_digests(conn, self.build_id)
        if self.build:
            ops.update_build(conn, self.build_id, self.build)


class RowMaker:
    """Turns one build's events into rows, remembering what this build already wrote.

    A task's row is made once: `_seen` holds the ids of tasks whose row is written
    and whose last event (finished, cached or skipped) has not come yet; the
    engine sends that event once per task, so the set holds only tasks in flight.
    A started task's row waits in `_pending` for its finish in the same slice of
    events, whose action record carries the spec already made (no second
    `task.spec()`); the slice's end writes the rows still waiting.
    """

    def __init__(self, build_id: str) -> None:
        self.build_id = build_id
        self._seen: set[str] = set()
        self._started: dict[str, float] = {}
        self._pending: dict[str, tuple[BaseTask, float, tuple[str, ...] | None]] = {}
        # Per class and per root key, not per task: most of a build is few classes.
        self._code: dict[type, tuple[str, str, str | None]] = {}
        self._stores: dict[str, str | None] = {}
        self._here = here(IN_PROCESS_NAME)  # where tasks that no executor ran, ran

    def rows(self, events: list[BuildEvent], build_error: BaseException | None) -> BatchRows:
        """The rows for a slice of the build's events, in order."""
        batch = BatchRows(self.build_id)
        for event in events:
            self._add(batch, event, build_error)
        for task, seen, static in self._pending.values():  # started, not finished yet
            self._task_row(batch, task, seen, static, None)
        self._pending.clear()
        return batch

    def _add(self, batch: BatchRows, event: BuildEvent, build_error: BaseException | None) -> None:
        kind = event.kind
        task = event.task
        if kind is EventKind.BUILD_STARTED:
            for root in event.roots:
                self._task(batch, root, event.time, static=None)
        elif kind is EventKind.BUILD_ENDED:
            self._end(batch, event, build_error)
        elif task is None:
            return
        elif kind is EventKind.TASK_STARTED:
            self._task(batch, task, event.time, static=event.requires, later=True)
            self._started[task.id] = event.time
        elif kind is EventKind.TASK_COMPLETED:
            self._finished(batch, task, event, outcome="computed")
        elif kind is EventKind.TASK_FAILED:
            self._finished(batch, task, event, outcome="failed")
        elif kind is EventKind.TASK_INTERRUPTED:
            self._finished(batch, task, event, outcome="interrupted")
        elif kind in (EventKind.TASK_CACHED, EventKind.TASK_SKIPPED):
            self._task(batch, task, event.time, static=None)
            outcome = "cached" if kind is EventKind.TASK_CACHED else "skipped"
            batch.runs.append(self._run(task, outcome, event.time, event.time))
            if kind is EventKind.TASK_CACHED:
                batch.cached.append(task)
                if event.remote is not None:  # read through a remote: lineage from its records
                    _add_read_through(batch, task, event.remote, event.time)
            self._seen.discard(task.id)  # its last event: memory stays flat with the build

    def _task(
        self,
        batch: BatchRows,
        task: BaseTask,
        seen: float,
        static: tuple[str, ...] | None,
        spec: dict[str, Any] | None = None,
        later: bool = False,
    ) -> None:
        """Make a task's row once: now, or (`later`) with its finish, or at the slice's end.

        `spec`: the task's spec if already made (its action record's).
        """
        task_id = task.id
        if task_id in self._seen:
            waiting = self._pending.pop(task_id, None)
            if waiting is not None:
                self._task_row(batch, *waiting, spec)
            return
        self._seen.add(task_id)
        if later:
            self._pending[task_id] = (task, seen, static)
        else:
            self._task_row(batch, task, seen, static, spec)

    def _task_row(
        self,
        batch: BatchRows,
        task: BaseTask,
        seen: float,
        static: tuple[str, ...] | None,
        spec: dict[str, Any] | None,
    ) -> None:
        task_id = task.id
        module, qualname, code = self._code_of(type(task))
        spec = task.spec() if spec is None else spec
        batch.tasks.append(_writes.spec_row(task_id, spec, seen, module, qualname, code))
        deps = static if static is not None else _static_deps(task)
        batch.edges.extend(_writes.edge_rows(task_id, deps, "static"))

    def _finished(self, batch: BatchRows, task: BaseTask, event: BuildEvent, outcome: str) -> None:
        task_id, ended, record = task.id, event.time, event.record
        self._task(batch, task, ended, None, None if record is None else record.spec)
        started = self._started.pop(task_id, ended)
        where = event.where or self._here
        run = {  # one dict, the columns in `_run`'s order (every run of a batch alike)
            "build_id": self.build_id,
            "task_id": task_id,
            "outcome": outcome,
            "started": started,
            "ended": ended,
            "duration": ended - started,
            "error_type": None,
            "error_message": None,
            "traceback": None,
            "digest": None if record is None else record.digest,
            "size_raw": None if record is None else record.size_raw,
            "fingerprint": self._code_of(type(task))[2],
            "executor": where.executor,
            "executor_ref": where.ref,
        }
        if event.dynamic:
            batch.edges.extend(_writes.edge_rows(task_id, event.dynamic, "dynamic"))
        if event.error is not None:
            run |= _error_columns(event.error)
        if record is not None:
            batch.outputs.append(self._output(task, record))
        batch.runs.append(run)
        self._seen.discard(task_id)  # its last event: memory stays flat with the build

    def _run(self, task: BaseTask, outcome: str, started: float, ended: float) -> Row:
        return {
            "build_id": self.build_id,
            "task_id": task.id,
            "outcome": outcome,
            "started": started,
            "ended": ended,
            "duration": ended - started,
            "error_type": None,
            "error_message": None,
            "traceback": None,
            "digest": None,
            "size_raw": None,
            "fingerprint": self._code_of(type(task))[2],
            "executor": None,
            "executor_ref": None,
        }

    def _output(self, task: BaseTask, record: ActionRecord, build: bool = True) -> Row:
        build_id = self.build_id if build else None
        return _writes.output_row(record, self._store_url(task), build_id, time.time())

    def _code_of(self, cls: type) -> tuple[str, str, str | None]:
        found = self._code.get(cls)
        if found is None:
            found = self._code[cls] = (*code_location(cls), fingerprint(cls))
        return found

    def _store_url(self, task: BaseTask) -> str | None:
        if not isinstance(task, Task):
            return None
        key = task._target_root_key
        if key not in self._stores:
            self._stores[key] = _store_url(task)
        return self._stores[key]

    def _end(self, batch: BatchRows, event: BuildEvent, build_error: BaseException | None) -> None:
        for task_id, started in self._started.items():
            batch.runs.append(_interrupted_run(self.build_id, task_id, started, event.time))
        self._started.clear()
        summary = event.summary
        failed = build_error is not None or (summary is not None and not summary.ok)
        status = "failed" if failed else "succeeded"
        if isinstance(build_error, (KeyboardInterrupt, asyncio.CancelledError)):
            status = "interrupted"
        batch.build = {"ended": event.time, "status": status}

    def backfill_cached(self, registry: Registry | LiteRegistry, batch: BatchRows) -> None:
        """Add output rows for cached tasks the registry has no output of (from the store)."""
        stored = [t for t in batch.cached if isinstance(t, Task)]
        if not stored:
            return
        ids = [t.id for t in stored]
        ops = write_ops(registry)
        known: set[str] = registry.read(lambda conn: ops.known_outputs(conn, ids))
        for task in stored:
            if task.id not in known:
                record = _record_of(task)
                if record is not None:
                    batch.outputs.append(self._output(task, record, build=False))


def write_ops(registry: Registry | LiteRegistry) -> Any:
    """The module that writes into `registry`: `_lite` for a `LiteRegistry`, else `_writes`."""
    if isinstance(registry, LiteRegistry):
        return _lite
    from stardag.registry import _writes

    return _writes


def _interrupted_run(build_id: str, task_id: str, started: float, ended: float) -> Row:
    return {
        "build_id": build_id,
        "task_id": task_id,
        "outcome": "interrupted",
        "started": started,
        "ended": ended,
        "duration": ended - started,
        "error_type": "BuildInterrupted",
        "error_message": "the build ended before the task finished",
        "traceback": None,
        "digest": None,
        "size_raw": None,
        "fingerprint": None,
        "executor": None,
        "executor_ref": None,
    }


def _error_columns(error: BaseException) -> Row:
    kind = type(error)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    trace = "".join(traceback.format_exception(error))
    return {
        "error_type": name,
        "error_message": str(error)[:MAX_TEXT],
        "traceback": trace[-MAX_TEXT:],
    }


def _static_deps(task: BaseTask) -> list[str]:
    try:
        return [dep.id for dep in flatten_task_struct(task.requires())]
    except Exception:  # noqa: BLE001  # the build already judged requires(); lineage is best effort
        return []


def _store_url(task: BaseTask) -> str | None:
    if not isinstance(task, Task):
        return None
    try:
        return task.target().store.url
    except Exception:  # noqa: BLE001  # a root unconfigured since the run: leave it blank
        return None


def _record_of(task: Task[Any]) -> ActionRecord | None:
    try:
        return task.target().record()
    except Exception:  # noqa: BLE001  # an unreadable record: the store check reports it
        return None


def _add_read_through(batch: BatchRows, task: BaseTask, remote: str, when: float) -> None:
    """Add the lineage and the fetch row of a task a build read through from `remote`.

    Called on the recorder's writer thread, off the build's critical path. The
    lineage walk reads the remote's records; if it fails, the fetch is still counted
    and the lineage stops at the task (a warning says so).
    """
    try:
        records, _ = closure(store_for(remote), [task.id])
    except Exception as exc:  # noqa: BLE001  # lineage is best effort; the build stands
        logger.warning("lineage of %s from remote %s not recorded: %s", task.id, remote, exc)
        records = []
    from stardag.registry import _fetches

    tasks, edges = _fetches.lineage_rows(records)
    batch.tasks.extend(tasks)
    batch.edges.extend(edges)
    digest = next((r.digest for r in records if r.task_id == task.id), "")
    batch.fetches.append(
        _fetches.fetch_row(task.id, digest, remote, "read-through", batch.build_id, when)
    )
