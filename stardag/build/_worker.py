"""The worker side of an executor: run one task in whatever process received it.

`run_job(payload)` is what a process pool or a Dask worker calls. The payload
is a pickled `Job`: the task and the target roots the coordinator resolved, so
the worker writes to the same store whatever its own environment says. It runs
the task once (saving its returned value: blob, then record), and answers with
a pickled outcome: done with the action record, yielded (dynamic dependencies
not complete yet: the worker stops, the coordinator builds them and submits the
task again, which re-runs it), or failed with the worker's traceback.

Invariant: the worker never touches the registry, and a task that did not
finish publishes nothing (the store writes blob then record, each atomically).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import pickle
import socket
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from stardag import _config
from stardag._errors import ExecutorError, RemoteTaskError, TaskFailedError, TaskPicklingError
from stardag.build._executor import RunPlace, TaskDone, TaskFailed, TaskOutcome, TaskYielded
from stardag.build._interrupt import PublishGate
from stardag.task._base import BaseTask, flatten_task_struct
from stardag.task._stored import Task

PICKLE_PROTOCOL = 5


@dataclass(frozen=True)
class Job:
    """What a worker needs to run one task: the task and the coordinator's target roots."""

    task: BaseTask
    roots: dict[str, str]


class _Yield(Exception):  # control flow inside the worker, never raised out
    def __init__(self, tasks: list[BaseTask]) -> None:
        self.tasks = tasks


def is_async(task: BaseTask) -> bool:
    """Whether the engine runs the task on an event loop (`run_aio`) rather than `run()`."""
    declared = getattr(type(task), "__stardag_is_async__", None)
    if declared is not None:
        return bool(declared)
    return type(task).run_aio is not BaseTask.run_aio


def run_task(task: BaseTask, where: RunPlace) -> TaskOutcome:
    """Run one task here, once; its dependencies are complete. Never raises an Exception."""
    # A gate of its own: only the coordinator abandons a build, and it tells this
    # worker by cancelling the task, not through the gate.
    task._set_run_state({"dynamic": [], "gate": PublishGate()})
    try:
        if is_async(task):
            result = asyncio.run(_run_async(task))
        else:
            result = task.run()
            if inspect.isgenerator(result):
                result = _drive(task, result)
        record = _settle(task, result)
        return TaskDone(where, record, tuple(_dynamic(task)))
    except _Yield as yielded:
        return TaskYielded(where, tuple(yielded.tasks))
    except Exception as exc:  # noqa: BLE001  # a task's failure is data for the build
        return TaskFailed(where, exc, "".join(traceback.format_exception(exc)))
    finally:
        task._set_run_state(None)


def _dynamic(task: BaseTask) -> list[str]:
    state = task._run_state
    return list(state["dynamic"]) if state else []


def _check_yield(task: BaseTask, struct: Any) -> None:
    """Go on past a yield whose tasks are all complete; stop the run otherwise."""
    tasks = flatten_task_struct(struct)
    state = task._run_state
    if state is not None:
        state["dynamic"].extend(t.id for t in tasks)
    if not all(t.complete() for t in tasks):
        raise _Yield(tasks)


def _drive(task: BaseTask, gen: Any) -> Any:
    try:
        yielded = gen.send(None)
        while True:
            try:
                _check_yield(task, yielded)
            except _Yield:
                gen.close()
                raise
            yielded = gen.send(None)
    except StopIteration as stop:
        return stop.value


async def _run_async(task: BaseTask) -> Any:
    outcome = task.run_aio()
    if inspect.isasyncgen(outcome):
        try:
            yielded = await outcome.__anext__()
            while True:
                try:
                    _check_yield(task, yielded)
                except _Yield:
                    await outcome.aclose()
                    raise
                yielded = await outcome.asend(None)
        except StopAsyncIteration:
            return None
    result = await outcome
    return _drive(task, result) if inspect.isgenerator(result) else result


def _settle(task: BaseTask, result: Any) -> Any:
    """Save a returned value, then make sure the task is complete (as the engine does)."""
    state = task._run_state or {}
    if result is not None and isinstance(task, Task) and "record" not in state:
        task._save(result)
    record = state.get("record")
    if record is None and not task.complete():
        raise TaskFailedError(
            f"task {type(task).get_name()} ({task.id[:12]}) ran without error but is still "
            "not complete: run() must save its output (or return it)",
            task_id=task.id,
        )
    return record


# -- across processes -----------------------------------------------------------------


def pack(task: BaseTask, configured: dict[str, str]) -> bytes:
    """The pickled job for `task`; `TaskPicklingError` naming it if it does not pickle."""
    try:
        return pickle.dumps(Job(task, configured), protocol=PICKLE_PROTOCOL)
    except Exception as exc:
        raise TaskPicklingError(
            f"task {_describe(task)} cannot be sent to another process: pickling it failed "
            f"({type(exc).__name__}: {exc}). Define the task class at the top level of an "
            "importable module (not in a function or __main__ of a notebook), and give it "
            "parameters that pickle; or run it in process (RoutedTaskExecutor).",
            task_id=task.id,
        ) from exc


def run_job(payload: bytes, executor: str, address: str | None = None) -> bytes:
    """Unpack a job, run it under the coordinator's roots, and pack the outcome."""
    where = worker_place(executor, address)
    job = _unpack(payload)
    with roots(job.roots):
        outcome = run_task(job.task, where)
    return _pack_outcome(job.task, outcome)


def probe(payloads: list[bytes]) -> list[str | None]:
    """For each payload, None if it unpickles here, else why not (run on a worker)."""
    answers: list[str | None] = []
    for payload in payloads:
        try:
            pickle.loads(payload)  # noqa: S301  # our own job, made by the coordinator
        except BaseException as exc:  # noqa: BLE001  # reported to the coordinator
            answers.append(f"{type(exc).__name__}: {exc}")
        else:
            answers.append(None)
    return answers


@functools.cache
def _hostname() -> str:
    """This machine's name (asked once per process: every job names where it ran)."""
    return socket.gethostname()


def worker_place(executor: str, address: str | None = None) -> RunPlace:
    """This worker process as a `RunPlace`."""
    ref = f"{_hostname()}:{os.getpid()}"
    return RunPlace(executor, f"{address} {ref}" if address else ref)


@contextmanager
def roots(configured: dict[str, str]) -> Iterator[None]:
    """Resolve target roots to `configured` in this context (this thread or task)."""
    token = _config.ROOTS_OVERRIDE.set(configured)
    try:
        yield
    finally:
        _config.ROOTS_OVERRIDE.reset(token)


def _unpack(payload: bytes) -> Job:
    job = pickle.loads(payload)  # noqa: S301  # our own job, made by the coordinator
    if not isinstance(job, Job):
        raise ExecutorError(f"not a stardag job: {type(job).__qualname__}")
    return job


def _pack_outcome(task: BaseTask, outcome: TaskOutcome) -> bytes:
    """Pickle an outcome; an error that does not round-trip travels as its text."""
    try:
        data = pickle.dumps(outcome, protocol=PICKLE_PROTOCOL)
        if isinstance(outcome, TaskFailed):
            pickle.loads(data)  # noqa: S301  # ours; an exception may pickle yet not unpickle
        return data
    except Exception as exc:  # noqa: BLE001  # replaced by a description that pickles
        if isinstance(outcome, TaskFailed):
            kind = type(outcome.error)
            error: ExecutorError = RemoteTaskError(
                f"task {_describe(task)} failed on a worker with "
                f"{kind.__module__}.{kind.__qualname__}: {outcome.error} "
                "(that exception cannot be pickled, so it is reported by its text)",
                task_id=task.id,
            )
        else:
            error = ExecutorError(
                f"task {_describe(task)} ran, but its outcome cannot be sent back from the "
                f"worker: {type(exc).__name__}: {exc}",
                task_id=task.id,
            )
        trace = outcome.traceback if isinstance(outcome, TaskFailed) else ""
        return pickle.dumps(TaskFailed(outcome.where, error, trace), protocol=PICKLE_PROTOCOL)


def unpack_outcome(data: bytes, task: BaseTask) -> TaskOutcome:
    """The outcome a worker sent; a failure gets the worker's traceback as a note."""
    outcome: TaskOutcome = pickle.loads(data)  # noqa: S301  # made by our worker function
    if not isinstance(outcome, TaskDone | TaskYielded | TaskFailed):
        raise ExecutorError(f"task {_describe(task)}: a worker answered {type(outcome)}")
    if isinstance(outcome, TaskFailed) and outcome.traceback:
        outcome.error.add_note(
            f"worker traceback ({outcome.where.executor} {outcome.where.ref}):\n"
            + outcome.traceback.rstrip()
        )
    return outcome


def _describe(task: BaseTask) -> str:
    return f"{type(task).get_name()} ({task.id[:12]})"
