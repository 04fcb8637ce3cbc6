"""`build`, `build_aio` and `build_flow`: a stardag build as (or inside) a Prefect flow.

Inside a flow run (yours), `build` runs our engine with a `PrefectTaskExecutor`:
each incomplete task becomes one task run of that flow run. Outside one, it
makes a flow with `build_flow` and runs it. Either way the registry records
the build as usual, with the flow run's id and name as labels on the build row
(`sd.registry.build(id).labels["prefect.flow_run_id"]`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import prefect
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from stardag.build import _run
from stardag.build._events import BuildListener
from stardag.build._labels import labelled
from stardag.build._run import DEFAULT_REGISTRY, RegistryArg
from stardag.build._summary import BuildSummary, FailMode
from stardag.integration.prefect._executor import PrefectTaskExecutor, TaskOptions, label
from stardag.task._base import BaseTask

FLOW_NAME = "stardag-build"


@contextmanager
def _flow_run_labels() -> Iterator[None]:
    """Label builds started inside with the current flow run (if there is one)."""
    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if run is None:
        yield
        return
    with labelled({"prefect.flow_run_id": str(run.id), "prefect.flow_run_name": run.name}):
        yield


def _thread_pool() -> TaskRunner[PrefectFuture[Any]]:
    """Prefect's default task runner, spelled out: a pool of threads."""
    # ThreadPoolTaskRunner is generic in its own future type, which mypy holds invariant.
    return cast("TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner())


def _roots(tasks: BaseTask | Iterable[BaseTask]) -> list[BaseTask]:
    return [tasks] if isinstance(tasks, BaseTask) else list(tasks)


def _run_name(roots: Sequence[BaseTask]) -> str:
    shown = ", ".join(label(task) for task in roots[:3])
    return shown + (f" and {len(roots) - 3} more" if len(roots) > 3 else "")


def build_flow(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    name: str = FLOW_NAME,
    task_runner: TaskRunner[PrefectFuture[Any]] | None = None,
    **build_options: Any,
) -> prefect.Flow[[], BuildSummary]:
    """A Prefect flow that builds `tasks` when called (or served, or deployed).

    Args:
        tasks: the task or tasks to build.
        name: the flow's name in Prefect.
        task_runner: decides how many task runs run at once, and where
            (default: `ThreadPoolTaskRunner()`).
        **build_options: passed on to `build` (`fail_mode`, `registry`,
            `task_options`, `artifacts`, `listeners`).
    """
    roots = _roots(tasks)

    def stardag_build() -> BuildSummary:
        return build(roots, **build_options)

    return prefect.flow(
        name=name,
        flow_run_name=lambda: _run_name(roots),
        task_runner=task_runner or _thread_pool(),
        persist_result=False,
        validate_parameters=False,
    )(stardag_build)


def build(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    registry: RegistryArg = DEFAULT_REGISTRY,
    listeners: Sequence[BuildListener] | None = None,
    task_options: TaskOptions | None = None,
    artifacts: bool = True,
    task_runner: TaskRunner[PrefectFuture[Any]] | None = None,
) -> BuildSummary:
    """Build `tasks` with each incomplete task as one Prefect task run.

    Inside a flow run, its task runs join that flow run; outside one, a flow
    (`build_flow`) is made and run. A failing task fails its task run and the
    flow run, with the task's own exception, which this call raises.

    Args:
        tasks: the task or tasks to build.
        fail_mode: as for `sd.build`.
        registry: as for `sd.build`; the build row carries the flow run's id.
        listeners: as for `sd.build`.
        task_options: Prefect task options (`retries`, `retry_delay_seconds`,
            `tags`, ...) for every task, or a function of the task that returns them.
        artifacts: publish a markdown artifact for each task that completes.
        task_runner: for the flow made outside a flow run (default: a thread pool).
    """
    options: dict[str, Any] = {
        "fail_mode": fail_mode,
        "registry": registry,
        "listeners": listeners,
        "task_options": task_options,
        "artifacts": artifacts,
    }
    if FlowRunContext.get() is None:
        flow = build_flow(tasks, task_runner=task_runner, **options)
        return flow()
    executor = PrefectTaskExecutor(task_options=task_options, artifacts=artifacts)
    with _flow_run_labels():
        return _run.build(
            tasks,
            fail_mode=fail_mode,
            registry=registry,
            listeners=listeners,
            task_executor=executor,
        )


async def build_aio(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    registry: RegistryArg = DEFAULT_REGISTRY,
    listeners: Sequence[BuildListener] | None = None,
    task_options: TaskOptions | None = None,
    artifacts: bool = True,
    task_runner: TaskRunner[PrefectFuture[Any]] | None = None,
) -> BuildSummary:
    """`build`, awaited: inside an async flow run, or as a flow of its own."""
    if FlowRunContext.get() is None:
        roots = _roots(tasks)

        async def stardag_build() -> BuildSummary:
            return await build_aio(
                roots,
                fail_mode=fail_mode,
                registry=registry,
                listeners=listeners,
                task_options=task_options,
                artifacts=artifacts,
            )

        flow = prefect.flow(
            name=FLOW_NAME,
            flow_run_name=lambda: _run_name(roots),
            task_runner=task_runner or _thread_pool(),
            persist_result=False,
            validate_parameters=False,
        )(stardag_build)
        summary: BuildSummary = await flow()
        return summary
    executor = PrefectTaskExecutor(task_options=task_options, artifacts=artifacts)
    with _flow_run_labels():
        return await _run.build_aio(
            tasks,
            fail_mode=fail_mode,
            registry=registry,
            listeners=listeners,
            task_executor=executor,
        )
