"""Task executors: where a ready task runs, while the build engine stays the coordinator.

The engine decides *what* runs and *when* (discovery, completeness, ordering,
fail modes, events, the registry, progress); an executor only decides *where*.
`submit(task)` runs one ready task somewhere and answers with one outcome:

- `TaskDone`: the task finished; its output is in the store (`record`, for a
  `sd.Task`, is the action record the worker wrote).
- `TaskYielded`: the task yielded dynamic dependencies that are not complete;
  the engine builds them and submits the task again (a remote worker re-runs it
  from the start: its earlier yields are then complete and pass straight on).
- `TaskFailed`: the task raised; `error` is its exception, with the worker's
  traceback attached as a note.

Invariant: workers never write the registry. They write blobs and records to
the store (blob, then record), and the coordinator records each run, with the
`RunPlace` (executor, host:pid or worker address) the outcome names.
"""

from __future__ import annotations

import abc
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from stardag.task._base import BaseTask

if TYPE_CHECKING:
    from stardag.store._record import ActionRecord


@dataclass(frozen=True)
class RunPlace:
    """Where a task ran: the executor's name and a reference to the process or worker."""

    executor: str
    ref: str  # "host:pid", or a worker's address with its host:pid


def here(executor: str) -> RunPlace:
    """This process, as a `RunPlace` of `executor`."""
    return RunPlace(executor, f"{socket.gethostname()}:{os.getpid()}")


@dataclass(frozen=True)
class TaskDone:
    """The task finished and its output is complete in the store."""

    where: RunPlace
    record: ActionRecord | None = None
    dynamic: tuple[str, ...] = ()  # every task id it yielded, in order


@dataclass(frozen=True)
class TaskYielded:
    """The task yielded dynamic dependencies that are not complete yet."""

    where: RunPlace
    tasks: tuple[BaseTask, ...] = ()


@dataclass(frozen=True)
class TaskFailed:
    """The task raised `error` (the worker's traceback is in its notes and in `traceback`)."""

    where: RunPlace
    error: BaseException
    traceback: str = ""


TaskOutcome: TypeAlias = "TaskDone | TaskYielded | TaskFailed"


@dataclass(frozen=True)
class TaskExecutionError:
    """What an executor written for stardag 0.28 returns for a failed task (not raised).

    `exception` is the task's error, `traceback` the text of where it was raised.
    """

    exception: BaseException
    traceback: str

    def __str__(self) -> str:
        return f"{type(self.exception).__name__}: {self.exception}"


IN_PROCESS_NAME = "in_process"  # what run rows say of tasks the engine ran itself


class TaskExecutor(abc.ABC):
    """Runs ready tasks somewhere; the build engine stays the coordinator.

    Subclass it for a new place to run tasks. The engine calls `setup()` once per
    build before the first `submit`, `preflight(tasks)` for every task it is about
    to hand over (before any of them runs), `submit(task)` once per ready task
    (again after a `TaskYielded`), `cancel(task)` for tasks still in flight when a
    build is interrupted, and `teardown()` once at the end of the build.
    """

    name: ClassVar[str] = "custom"

    async def setup(self) -> None:  # noqa: B027  # optional hook
        """Start what the executor needs (a pool, a client); called once per build."""

    async def teardown(self) -> None:  # noqa: B027  # optional hook
        """Release what `setup()` started; called once per build, even after a failure."""

    async def preflight(self, tasks: Sequence[BaseTask]) -> None:  # noqa: B027  # optional hook
        """Check that `tasks` can run here; raise an `ExecutorError` naming one that cannot."""

    @abc.abstractmethod
    async def submit(self, task: BaseTask) -> TaskOutcome:
        """Run one ready task (all its dependencies are complete) and say how it went."""

    async def cancel(self, task: BaseTask) -> None:  # noqa: B027  # optional hook
        """Best effort: stop a submitted task that has not finished."""


def as_outcome(value: Any, where: RunPlace) -> TaskOutcome:
    """An outcome from what a 0.28-style executor returns: None (done), the tasks it
    yielded, a `TaskExecutionError` or an exception (failed), or an outcome of ours."""
    if isinstance(value, TaskDone | TaskYielded | TaskFailed):
        return value
    if value is None:
        return TaskDone(where)
    if isinstance(value, TaskExecutionError):
        if value.traceback:
            value.exception.add_note(f"traceback where it ran:\n{value.traceback}")
        return TaskFailed(where, value.exception, value.traceback)
    if isinstance(value, BaseException):
        return TaskFailed(where, value)
    from stardag.task._base import flatten_task_struct

    return TaskYielded(where, tuple(flatten_task_struct(value)))
