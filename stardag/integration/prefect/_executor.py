"""`PrefectTaskExecutor`: each ready stardag task runs as one Prefect task run.

Our engine stays the coordinator (discovery, completeness, order, fail modes,
the registry); Prefect runs what the engine hands it, on the task runner of the
flow run it is inside (a thread pool by default, Dask where the flow says so),
with Prefect's own retries. A task run is named `name (short id)` and waits for
the task runs of its upstream tasks (`wait_for`), so Prefect's graph shows our
DAG; complete tasks are never submitted.

Invariants: a retry first asks the store whether the task is already complete
(a run that wrote its output and then failed is a cache hit on retry, not a
second computation); a task that fails its last attempt fails its task run
with the task's own exception, and the build fails as it would in process.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from stardag import _config
from stardag._errors import ExecutorError
from stardag.build._executor import RunPlace, TaskDone, TaskExecutor, TaskFailed, TaskOutcome
from stardag.build._worker import roots, run_task
from stardag.integration._extras import missing_extra
from stardag.integration.prefect._artifact import artifact_key, describe
from stardag.task._base import BaseTask, flatten_task_struct
from stardag.task._stored import Task

try:
    import prefect
except ImportError as exc:
    raise missing_extra("prefect", "prefect", exc) from exc

from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext
from prefect.futures import PrefectFuture
from prefect.utilities.annotations import quote

TaskOptions: TypeAlias = "Mapping[str, Any] | Callable[[BaseTask], Mapping[str, Any]]"


@dataclass(frozen=True)
class _Job:
    """What one Prefect task run needs: the task and the store roots the build uses."""

    task: BaseTask
    roots: dict[str, str]
    artifacts: bool


def _place() -> RunPlace:
    context = TaskRunContext.get()
    run = f" task run {context.task_run.id}" if context is not None else ""
    return RunPlace(PrefectTaskExecutor.name, f"{socket.gethostname()}:{os.getpid()}{run}")


def _complete_record(task: BaseTask) -> tuple[bool, Any]:
    """Whether the task is complete already, and its action record if it has one."""
    if not task.complete():
        return False, None
    return True, task.output().record() if isinstance(task, Task) else None


def run_in_task_run(job: _Job, label: str) -> TaskOutcome:
    """The body of every stardag task run (the function Prefect calls)."""
    del label  # only Prefect reads it: the task run's name
    where = _place()
    context = TaskRunContext.get()
    retried = context is not None and context.task_run.run_count > 1
    with roots(job.roots):
        cached, record = _complete_record(job.task) if retried else (False, None)
        outcome = TaskDone(where, record) if cached else run_task(job.task, where)
    if isinstance(outcome, TaskFailed):
        raise outcome.error  # Prefect retries it, or fails the task run with it
    if isinstance(outcome, TaskDone) and job.artifacts:
        create_markdown_artifact(
            markdown=describe(job.task, outcome.record, cached=cached),
            key=artifact_key(job.task),
            description=f"stardag task {type(job.task).get_name()} ({job.task.id[:12]})",
        )
    return outcome


_STARDAG_TASK = prefect.task(
    name="stardag",
    task_run_name="{label}",
    cache_policy=NO_CACHE,  # completeness is the store's to decide, never Prefect's cache
    persist_result=False,  # outputs live in our store; Prefect keeps only the state
)(run_in_task_run)


def label(task: BaseTask) -> str:
    """A task run's name: the task's name and short id."""
    return f"{type(task).get_name()} ({task.id[:12]})"


class PrefectTaskExecutor(TaskExecutor):
    """Runs each ready stardag task as a Prefect task run of the current flow run.

    Use it inside a Prefect flow (`stardag.integration.prefect.build` makes one when
    called outside); concurrency is the flow's task runner's.

    Args:
        task_options: options for Prefect's `Task.with_options` (`retries`,
            `retry_delay_seconds`, `timeout_seconds`, `tags`, ...), for every task
            or chosen per task by a function of the task.
        artifacts: publish a markdown artifact for each task that completes.
    """

    name: ClassVar[str] = "prefect"

    def __init__(self, *, task_options: TaskOptions | None = None, artifacts: bool = True) -> None:
        self.task_options = task_options
        self.artifacts = artifacts
        self._futures: dict[str, PrefectFuture[Any]] = {}

    async def setup(self) -> None:
        """Check that the build runs inside a Prefect flow run."""
        if FlowRunContext.get() is None:
            raise ExecutorError(
                "PrefectTaskExecutor runs tasks as task runs of a Prefect flow run, and this "
                "build is not inside one: call stardag.integration.prefect.build(...), which "
                "starts a flow when needed, or build from inside your own @flow"
            )

    async def teardown(self) -> None:
        """Forget this build's futures."""
        self._futures.clear()

    async def cancel(self, task: BaseTask) -> None:
        """Best effort: cancel a task run that has not started."""
        future = self._futures.get(task.id)
        wrapped = getattr(future, "wrapped_future", None)
        if wrapped is not None and hasattr(wrapped, "cancel"):
            wrapped.cancel()

    async def submit(self, task: BaseTask) -> TaskOutcome:
        """Submit one task run, waiting for its upstream task runs; return its outcome."""
        job = _Job(task, _config.target_roots(), self.artifacts)
        prefect_task = _STARDAG_TASK.with_options(
            name=type(task).get_name(), **self._options_for(task)
        )
        future = prefect_task.submit(
            quote(job), label(task), return_state=False, wait_for=self._upstream(task)
        )
        self._futures[task.id] = future
        await _finished(future)
        return _outcome(task, future)

    def _options_for(self, task: BaseTask) -> dict[str, Any]:
        options = self.task_options
        chosen = options(task) if callable(options) else options
        return dict(chosen or {})

    def _upstream(self, task: BaseTask) -> list[PrefectFuture[Any]]:
        """The futures of the task's upstream tasks that ran in this flow run."""
        deps = flatten_task_struct(task.requires())
        state = task._run_state or {}
        ids = [d.id for d in deps] + list(state.get("dynamic", ()))
        return [self._futures[i] for i in dict.fromkeys(ids) if i in self._futures]


async def _finished(future: PrefectFuture[Any]) -> None:
    """Wait, without holding a thread, for a Prefect future to finish."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    def settle(_: Any) -> None:  # on the task runner's thread
        loop.call_soon_threadsafe(finish)

    future.add_done_callback(settle)
    await done
    await asyncio.to_thread(future.wait)  # returns at once: records the final state


def _outcome(task: BaseTask, future: PrefectFuture[Any]) -> TaskOutcome:
    state = future.state
    if state.is_completed():
        outcome: TaskOutcome = future.result()
        return outcome
    error = future.result(raise_on_failure=False) if state.is_failed() else None
    if not isinstance(error, BaseException):
        error = ExecutorError(
            f"the Prefect task run of task {label(task)} ended {state.type.value}: "
            f"{state.message or 'no message'}",
            task_id=task.id,
        )
    return TaskFailed(RunPlace(PrefectTaskExecutor.name, f"task run {future.task_run_id}"), error)
