"""What every executor that runs tasks in other processes shares: pickling and a preflight.

Before a build hands a task to another process, `preflight` pickles it here
(a task that does not pickle fails now, named, before any work starts) and
asks one worker to unpickle one task of each class it has not seen (a module
the worker cannot import fails now too). The pickled job is kept and sent by
`submit`, so a task is pickled once. Subclasses say how to call a function
on a worker (`_call`) and how to run a job there (`_run`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any

from stardag import _config
from stardag._errors import WorkerImportError
from stardag.build._executor import TaskExecutor, TaskOutcome
from stardag.build._worker import pack, probe, unpack_outcome
from stardag.task._base import BaseTask


class ShippingExecutor(TaskExecutor):
    """Base of executors whose workers are other processes: tasks travel pickled."""

    def __init__(self) -> None:
        self._payloads: dict[str, bytes] = {}
        self._probed: set[type] = set()

    async def preflight(self, tasks: Sequence[BaseTask]) -> None:
        """Pickle every task; have a worker load one task of each class new to it."""
        roots = _config.target_roots()
        samples: dict[type, tuple[BaseTask, bytes]] = {}
        for task in tasks:
            payload = self._payloads[task.id] = pack(task, roots)
            if type(task) not in self._probed:
                samples.setdefault(type(task), (task, payload))
        if not samples:
            return
        answers = await self._call(probe, [payload for _, payload in samples.values()])
        for cls, (task, _), answer in zip(samples, samples.values(), answers, strict=True):
            if answer is not None:
                raise WorkerImportError(
                    f"task {type(task).get_name()} ({task.id[:12]}) cannot be loaded on a "
                    f"{self.name} worker ({answer}). The worker needs the task's code: make "
                    f"module {cls.__module__!r} importable there (installed, or on its "
                    "PYTHONPATH), with the same package versions as here; a task defined in "
                    "__main__ or inside a function cannot be shipped.",
                    task_id=task.id,
                )
            self._probed.add(cls)

    async def submit(self, task: BaseTask) -> TaskOutcome:
        """Send the pickled job to a worker; the outcome comes back pickled."""
        payload = self._payloads.pop(task.id, None)
        if payload is None:  # submitted again after a yield, or without a preflight
            payload = pack(task, _config.target_roots())
        return unpack_outcome(await self._run(task, payload), task)

    @abc.abstractmethod
    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on some worker and return its value."""

    @abc.abstractmethod
    async def _run(self, task: BaseTask, payload: bytes) -> bytes:
        """Run one job on a worker (`run_job`); raise `WorkerLostError` if the worker died."""
