"""Which executor runs a task: the in-process default, and `RoutedTaskExecutor`.

`RoutedTaskExecutor` asks, per task: its `router(task)`, else the task class's
hint (`__stardag_executor__`, set by `@sd.task(executor=...)`), else its
default. Routes are decided when the engine plans a task, before anything of
the build runs, so an unknown executor name fails the build up front.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from stardag._errors import ExecutorError
from stardag.build._executor import IN_PROCESS_NAME, TaskExecutor, TaskOutcome, here
from stardag.build._worker import run_task
from stardag.task._base import BaseTask


class InProcessTaskExecutor(TaskExecutor):
    """The default: tasks run in the building process (threads and its event loop).

    The engine runs tasks routed here on its own thread pool and event loop, the
    fastest path; `submit()` exists so that this executor also works where only
    the interface is known (it runs the task on a thread).
    """

    name: ClassVar[str] = IN_PROCESS_NAME

    async def submit(self, task: BaseTask) -> TaskOutcome:
        """Run the task on a thread of this process."""
        return await asyncio.to_thread(run_task, task, here(self.name))


IN_PROCESS = InProcessTaskExecutor()

Router: TypeAlias = Callable[[BaseTask], "str | None"]


def executor_hint(task: BaseTask) -> str | None:
    """The executor a task's class asks for (`__stardag_executor__`), if any."""
    hint = getattr(type(task), "__stardag_executor__", None)
    return hint if isinstance(hint, str) else None


@dataclass
class RoutedTaskExecutor(TaskExecutor):
    """Picks an executor per task: by `router(task)`, else the task's hint, else `default`.

    Args:
        executors: the executors by name, e.g. `{"local": IN_PROCESS, "dask": DaskExecutor(...)}`.
        router: returns the name of the executor for a task, or None to fall back
            to the task class's `__stardag_executor__` hint (`@sd.task(executor=...)`),
            then to `default`.
        default: the name used when neither says; by default the first of `executors`.
    """

    executors: Mapping[str, TaskExecutor]
    router: Router | None = None
    default: str | None = None
    name: ClassVar[str] = "routed"

    def __post_init__(self) -> None:
        if not self.executors:
            raise ExecutorError("RoutedTaskExecutor needs at least one executor")
        for key, executor in self.executors.items():
            if isinstance(executor, RoutedTaskExecutor):
                raise ExecutorError(f"RoutedTaskExecutor {key!r}: routers do not nest")
        if self.default is None:
            self.default = next(iter(self.executors))
        elif self.default not in self.executors:
            raise ExecutorError(
                f"RoutedTaskExecutor default {self.default!r} is not one of "
                f"{sorted(self.executors)}"
            )

    def route(self, task: BaseTask) -> TaskExecutor:
        """The executor that runs `task`; `ExecutorError` naming it if the key is unknown."""
        key = self.router(task) if self.router is not None else None
        if key is None:
            key = executor_hint(task) or self.default
        executor = self.executors.get(key) if key is not None else None
        if executor is None:
            raise ExecutorError(
                f"task {type(task).get_name()} ({task.id[:12]}) is routed to executor "
                f"{key!r}, which is not one of {sorted(self.executors)}",
                task_id=task.id,
            )
        return executor

    async def setup(self) -> None:
        """Set up every executor it routes to."""
        for executor in _distinct(self.executors.values()):
            await executor.setup()

    async def teardown(self) -> None:
        """Tear down every executor it routes to (all of them, even if one fails)."""
        errors: list[BaseException] = []
        for executor in _distinct(self.executors.values()):
            try:
                await executor.teardown()
            except Exception as exc:  # noqa: BLE001  # re-raised after the others
                errors.append(exc)
        if errors:
            raise errors[0]

    async def preflight(self, tasks: Sequence[BaseTask]) -> None:
        """Route every task, then let each executor check its own."""
        mine: dict[int, tuple[TaskExecutor, list[BaseTask]]] = {}
        for task in tasks:
            executor = self.route(task)
            mine.setdefault(id(executor), (executor, []))[1].append(task)
        for executor, assigned in mine.values():
            await executor.preflight(assigned)

    async def submit(self, task: BaseTask) -> TaskOutcome:
        """Submit to the executor the task is routed to."""
        return await self.route(task).submit(task)

    async def cancel(self, task: BaseTask) -> None:
        """Cancel on the executor the task is routed to."""
        await self.route(task).cancel(task)


def _distinct(executors: Any) -> list[TaskExecutor]:
    seen: dict[int, TaskExecutor] = {}
    for executor in executors:
        seen.setdefault(id(executor), executor)
    return list(seen.values())
