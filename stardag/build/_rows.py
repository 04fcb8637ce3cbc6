"""Build events in, registry rows out, in two steps that may run in two processes.

`Facts` turns a build's events into `Fact`s, in the building process: plain tuples
holding all that a row needs from the live tasks (spec, dependencies, code
location, store), so that nothing after it touches a task. `RowMaker` turns facts
into rows and `Writer` writes them: in the recorder's writer thread, or, for a
large build, in a recording process (`_recordproc`), where that work does not
contend with the build for this interpreter's lock. Both places run this code.

Runs are written when a task finishes (computed, failed, skipped, cached or
interrupted); a task that started and never finished by the end of the build is
recorded as interrupted. A build that ends by KeyboardInterrupt (Ctrl-C) is
recorded as interrupted. Each task row is made once per build.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from stardag._errors import RegistryError, RegistryUnreachableError
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
Code = tuple[str, str, "str | None"]  # a task class's module, qualname and code fingerprint
MAX_TEXT = 64 * 1024  # error messages and tracebacks are cut to this many characters
ROOT = "root"  # a fact's kind for a root the build started with


@dataclass
class BatchRows:
    """Everything one write transaction of the recorder puts in the registry."""

    build_id: str
    tasks: list[Row] = field(default_factory=list)
    edges: list[Row] = field(default_factory=list)
    runs: list[Row] = field(default_factory=list)
    outputs: list[Row] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)  # ids of tasks found complete
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
            ops.touch_outputs(conn, self.cached, now)
            ops.fill_cached_digests(conn, self.build_id)
        if self.build:
            ops.update_build(conn, self.build_id, self.build)


class Fact(NamedTuple):
    """One event of a build, as plain data: all its rows need, no task object.

    `spec` and `static` (the static dependency ids) are set where the task's row may
    still be missing. A task that starts and finishes within one slice of events
    is one fact, its finish, carrying the time it `started`. `record` holds the
    output's (digest, serializer, size_raw, size_stored, created) when one was written.
    """

    kind: str  # an `EventKind` value, or ROOT
    time: float
    task_id: str = ""
    code: Code | None = None
    spec: dict[str, Any] | None = None
    static: tuple[str, ...] | list[str] | None = None
    record: tuple[str, str, int, int, str] | None = None
    store: str | None = None
    where: tuple[str, str] | None = None  # (executor, ref); None: in this process
    dynamic: tuple[str, ...] = ()
    error: Row | None = None  # the error columns of a failed task
    status: str = ""  # BUILD_ENDED: succeeded, failed or interrupted
    started: float | None = None  # a finish whose start is in the same slice: its time


_STARTED = EventKind.TASK_STARTED.value
_COMPLETED = EventKind.TASK_COMPLETED.value
_FAILED = EventKind.TASK_FAILED.value
_INTERRUPTED = EventKind.TASK_INTERRUPTED.value
_CACHED = EventKind.TASK_CACHED.value
_SKIPPED = EventKind.TASK_SKIPPED.value
_ENDED = EventKind.BUILD_ENDED.value
_FINISHES = {
    EventKind.TASK_COMPLETED: _COMPLETED,
    EventKind.TASK_FAILED: _FAILED,
    EventKind.TASK_INTERRUPTED: _INTERRUPTED,
}


class Facts:
    """Turns a build's events into facts and extra rows, in the building process.

    Extra rows are those that need more than the event: the lineage and fetch of a
    task read through a remote, and output rows for cached tasks the registry does
    not know yet (read from the store). Code locations and store URLs are read per
    class and per root key, not per task: most of a build is few classes.
    `_running` holds the tasks whose start went out in an earlier slice.
    """

    def __init__(self, build_id: str) -> None:
        self.build_id = build_id
        self._code: dict[type, Code] = {}
        self._stores: dict[str, str | None] = {}
        self._running: set[str] = set()

    def of(
        self,
        events: list[BuildEvent],
        build_error: BaseException | None,
        registry: Registry | LiteRegistry,
    ) -> tuple[list[Fact], BatchRows | None]:
        """The facts of a slice of events, in order, and its extra rows (or None)."""
        facts: list[Fact | None] = []
        append = facts.append
        opened: dict[str, tuple[int, BaseTask]] = {}  # started in this slice: where, what
        extra: BatchRows | None = None
        cached: list[BaseTask] = []
        ended: Fact | None = None
        for event in events:
            kind, task = event.kind, event.task
            if task is None:
                if kind is EventKind.BUILD_STARTED:
                    for root in event.roots:
                        append(self._whole(ROOT, root, event.time))
                elif kind is EventKind.BUILD_ENDED:
                    ended = Fact(_ENDED, event.time, status=_status(event, build_error))
            elif kind is EventKind.TASK_STARTED:
                opened[task.id] = (len(facts), task)
                append(Fact(_STARTED, event.time, task.id, None, None, event.requires))
            elif kind in _FINISHES:
                start = opened.pop(task.id, None)
                first = None
                if start is not None:
                    first = facts[start[0]]
                    facts[start[0]] = None  # one fact for both
                append(self._finished(task, event, _FINISHES[kind], first))
            elif kind is EventKind.TASK_CACHED:
                append(self._whole(_CACHED, task, event.time))
                cached.append(task)
                if event.remote is not None:  # read through a remote: lineage from its records
                    extra = extra or BatchRows(self.build_id)
                    _add_read_through(extra, task, event.remote, event.time)
            elif kind is EventKind.TASK_SKIPPED:
                append(self._whole(_SKIPPED, task, event.time))
        for index, task in opened.values():  # still running: its row is made now
            fact = facts[index]
            assert fact is not None
            facts[index] = fact._replace(code=self._code_of(task), spec=task.spec())
            self._running.add(task.id)
        if cached:
            extra = self._backfill(registry, cached, extra)
        made = [fact for fact in facts if fact is not None]
        if ended is not None:
            made.append(ended)
        return made, extra

    def _whole(self, kind: str, task: BaseTask, when: float) -> Fact:
        """A fact with the task's spec and static dependencies (its row may be missing)."""
        return Fact(kind, when, task.id, self._code_of(task), task.spec(), _static_deps(task))

    def _finished(self, task: BaseTask, event: BuildEvent, kind: str, first: Fact | None) -> Fact:
        """A finish: with its start (`first`) if that is in this slice, else on its own."""
        task_id, record, where = task.id, event.record, event.where
        started: float | None = None
        static: tuple[str, ...] | list[str] | None = None
        if first is not None:
            started, static = first.time, first.static
        else:
            if task_id in self._running:
                self._running.discard(task_id)  # its row went out with its start
            else:  # finished without a start (never ran): its row may be missing
                static = _static_deps(task)
        return Fact(
            kind,
            event.time,
            task_id,
            self._code_of(task),
            task.spec() if record is None else record.spec,
            static,
            None if record is None else _output_fields(record),
            None if record is None else self._store_url(task),
            None if where is None else (where.executor, where.ref),
            event.dynamic,
            None if event.error is None else _error_columns(event.error),
            "",
            started,
        )

    def _code_of(self, task: BaseTask) -> Code:
        cls = type(task)
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

    def _backfill(
        self, registry: Registry | LiteRegistry, cached: list[BaseTask], extra: BatchRows | None
    ) -> BatchRows | None:
        """Output rows for cached tasks the registry has no output of (from the store)."""
        stored = [t for t in cached if isinstance(t, Task)]
        if not stored:
            return extra
        ops = write_ops(registry)
        ids = [t.id for t in stored]
        known: set[str] = registry.read(lambda conn: ops.known_outputs(conn, ids))
        for task in stored:
            if task.id not in known:
                record = _record_of(task)
                if record is not None:
                    extra = extra or BatchRows(self.build_id)
                    url = self._store_url(task)
                    extra.outputs.append(_writes.output_row(record, url, None, time.time()))
        return extra


class RowMaker:
    """Turns one build's facts into rows, remembering what this build already wrote.

    A task's row is made once: `_seen` holds the ids of tasks whose row is written
    and whose last event (finished, cached or skipped) has not come yet; the
    engine sends that event once per task, so the set holds only tasks in flight,
    as `_started` holds the start times of tasks running across slices. Plain data
    only, so that it can move to a recording process mid-build.
    """

    def __init__(self, build_id: str, place: tuple[str, str] | None = None) -> None:
        self.build_id = build_id
        self._seen: set[str] = set()
        self._started: dict[str, float] = {}
        if place is None:  # where tasks that no executor ran, ran: the building process
            where = here(IN_PROCESS_NAME)
            place = (where.executor, where.ref)
        self._here = place

    def rows(self, facts: list[Fact], extra: BatchRows | None = None) -> BatchRows:
        """The rows for a slice of the build's facts, in order, with its extra rows."""
        batch = BatchRows(self.build_id)
        for fact in facts:
            self._add(batch, fact)
        if extra is not None:
            batch.tasks += extra.tasks
            batch.edges += extra.edges
            batch.outputs += extra.outputs
            batch.fetches += extra.fetches
        return batch

    def _add(self, batch: BatchRows, fact: Fact) -> None:
        kind = fact.kind
        if kind == _COMPLETED:
            self._finished(batch, fact, "computed")
        elif kind == _STARTED:
            self._task(batch, fact)
            self._started[fact.task_id] = fact.time
        elif kind == ROOT:
            self._task(batch, fact)
        elif kind == _ENDED:
            self._end(batch, fact)
        elif kind == _FAILED:
            self._finished(batch, fact, "failed")
        elif kind == _INTERRUPTED:
            self._finished(batch, fact, "interrupted")
        elif kind in (_CACHED, _SKIPPED):
            self._task(batch, fact)
            outcome = "cached" if kind == _CACHED else "skipped"
            batch.runs.append(self._run(fact, outcome))
            if kind == _CACHED:
                batch.cached.append(fact.task_id)
            self._seen.discard(fact.task_id)  # its last event: memory stays flat with the build

    def _task(self, batch: BatchRows, fact: Fact, seen: float | None = None) -> None:
        """Make a task's row unless this build already made it (first `seen` then)."""
        task_id = fact.task_id
        if task_id in self._seen:
            return
        self._seen.add(task_id)
        module, qualname, code = fact.code or (None, None, None)
        spec = fact.spec or {}
        when = fact.time if seen is None else seen
        batch.tasks.append(_writes.spec_row(task_id, spec, when, module, qualname, code))
        batch.edges.extend(_writes.edge_rows(task_id, fact.static or (), "static"))

    def _finished(self, batch: BatchRows, fact: Fact, outcome: str) -> None:
        task_id, ended, record = fact.task_id, fact.time, fact.record
        started = fact.started
        self._task(batch, fact, started)
        if started is None:
            started = self._started.pop(task_id, ended)
        executor, ref = fact.where or self._here
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
            "digest": None if record is None else record[0],
            "size_raw": None if record is None else record[2],
            "fingerprint": fact.code[2] if fact.code else None,
            "executor": executor,
            "executor_ref": ref,
        }
        if fact.dynamic:
            batch.edges.extend(_writes.edge_rows(task_id, fact.dynamic, "dynamic"))
        if fact.error is not None:
            run |= fact.error
        if record is not None:
            digest, serializer, size_raw, size_stored, created = record
            batch.outputs.append(
                {
                    "task_id": task_id,
                    "digest": digest,
                    "serializer": serializer,
                    "size_raw": size_raw,
                    "size_stored": size_stored,
                    "created": _writes.parse_time(created),
                    "build_id": self.build_id,
                    "store": fact.store,
                    "last_used": time.time(),
                }
            )
        batch.runs.append(run)
        self._seen.discard(task_id)  # its last event: memory stays flat with the build

    def _run(self, fact: Fact, outcome: str) -> Row:
        return {
            "build_id": self.build_id,
            "task_id": fact.task_id,
            "outcome": outcome,
            "started": fact.time,
            "ended": fact.time,
            "duration": 0.0,
            "error_type": None,
            "error_message": None,
            "traceback": None,
            "digest": None,
            "size_raw": None,
            "fingerprint": fact.code[2] if fact.code else None,
            "executor": None,
            "executor_ref": None,
        }

    def _end(self, batch: BatchRows, fact: Fact) -> None:
        for task_id, started in self._started.items():
            batch.runs.append(_interrupted_run(self.build_id, task_id, started, fact.time))
        self._started.clear()
        batch.build = {"ended": fact.time, "status": fact.status}


class Writer:
    """Writes one build's rows into its registry, slice by slice, in order.

    Batches an unreachable registry could not take wait, in order, and go with the
    next slice; what still waits when the build ends is reported (`finish`). The
    first failure is kept as `failure`; the writer goes on with later slices.
    """

    def __init__(
        self,
        registry: Registry | LiteRegistry,
        rows: RowMaker,
        unsent: list[BatchRows] | None = None,
    ) -> None:
        self.registry = registry
        self.rows = rows
        self._ops = write_ops(registry)
        self.unsent: list[BatchRows] = unsent or []  # batches not written yet, in order
        self.failure: RegistryError | None = None

    def take(
        self,
        facts: list[Fact],
        extra: BatchRows | None,
        setting: tuple[Environment, GitState] | None,
    ) -> None:
        """Make the rows of one slice of facts and write them with those still waiting."""
        try:
            batch = self.rows.rows(facts, extra)
            if setting is not None:
                batch.environment, batch.git = setting
            if not batch.empty():
                self.unsent.append(batch)
            self._send()
        except Exception as exc:  # noqa: BLE001  # reported at the end of the build
            self.fail(exc)

    def finish(self, forget: bool) -> RegistryError | None:
        """The build ended: report what was never written; `forget` the build row if asked.

        `forget`: the build stopped on bad settings before it started a task, so it
        never happened.
        """
        if self.unsent:
            self.fail(_unrecorded(self.registry, self.rows.build_id, self.unsent))
        elif forget:
            try:
                build_id = self.rows.build_id
                self.registry.write(lambda conn: self._ops.delete_build(conn, build_id))
            except Exception as exc:  # noqa: BLE001  # reported at the end of the build
                self.fail(exc)
        return self.failure

    def fail(self, exc: BaseException) -> None:
        """Keep the first failure, worded as a `RegistryError`."""
        if self.failure is None:
            self.failure = (
                exc
                if isinstance(exc, RegistryError)
                else RegistryError(f"recording build {self.rows.build_id} failed: {exc!r}")
            )

    def _send(self) -> None:
        """Write waiting batches in order; keep those an unreachable registry could not take."""
        while self.unsent:
            batch, registry, ops = self.unsent[0], self.registry, self._ops
            if batch.fetches and isinstance(registry, LiteRegistry):
                from stardag.registry._db import open_registry

                registry, ops = open_registry(registry.url), None  # an add-on table
            try:
                registry.write(functools.partial(_write_batch, batch, ops))
            except RegistryUnreachableError as exc:
                logger.warning("registry unreachable, %d batches wait: %s", len(self.unsent), exc)
                return
            self.unsent.pop(0)


def write_ops(registry: Registry | LiteRegistry) -> Any:
    """The module that writes into `registry`: `_lite` for a `LiteRegistry`, else `_writes`."""
    if isinstance(registry, LiteRegistry):
        return _lite
    from stardag.registry import _writes

    return _writes


def _write_batch(batch: BatchRows, ops: Any, conn: Any) -> None:
    batch.write(conn, ops)


def _unrecorded(
    registry: Registry | LiteRegistry, build_id: str, unsent: list[BatchRows]
) -> RegistryError:
    """The error that says which of a build's runs never reached the registry."""
    runs = [run for batch in unsent for run in batch.runs]
    names = ", ".join(f"{r['task_id'][:12]} ({r['outcome']})" for r in runs[:10])
    more = f" and {len(runs) - 10} more" if len(runs) > 10 else ""
    return RegistryUnreachableError(
        f"registry {registry.safe_url} stayed unreachable: {len(runs)} runs of build "
        f"{build_id} were not recorded: {names}{more}. Their outputs are in the store; "
        "`sd.registry.reindex()` records them once the registry is back",
        url=registry.safe_url,
    )


def _status(event: BuildEvent, build_error: BaseException | None) -> str:
    """How the build ended: succeeded, failed, or interrupted (Ctrl-C)."""
    if isinstance(build_error, (KeyboardInterrupt, asyncio.CancelledError)):
        return "interrupted"
    summary = event.summary
    failed = build_error is not None or (summary is not None and not summary.ok)
    return "failed" if failed else "succeeded"


def _output_fields(record: ActionRecord) -> tuple[str, str, int, int, str]:
    return record.digest, record.serializer, record.size_raw, record.size_stored, record.created


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
