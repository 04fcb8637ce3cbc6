"""`ProcessPoolTaskExecutor`: tasks in a local pool of worker processes (`spawn`).

For CPU-bound Python tasks, which share one interpreter lock on threads. Each
worker is a fresh interpreter (the `spawn` start method: no forked locks or
threads), so a task's class must be importable by module name; `preflight`
checks that before anything runs. The pool starts at the first build that uses
it and closes at the end of that build, unless it is held open by `with pool:`
across several builds (worker start-up is then paid once).

Invariant: a worker that dies mid-task (killed, out of memory) fails that task
with `WorkerLostError` and publishes nothing; the pool is replaced for the rest
of the build.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, ClassVar

from stardag._errors import WorkerLostError
from stardag.build._shipping import ShippingExecutor
from stardag.build._worker import run_job
from stardag.task._base import BaseTask


class ProcessPoolTaskExecutor(ShippingExecutor):
    """Runs tasks in a pool of `max_workers` local processes started with `spawn`.

    Args:
        max_workers: worker processes (default: one per core).

    Use it for one build (`sd.build(t, task_executor=ProcessPoolTaskExecutor())`),
    or hold it open across builds: `with ProcessPoolTaskExecutor(4) as pool: ...`.
    """

    name: ClassVar[str] = "process"

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        self.max_workers = max_workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._held = 0
        self._inflight: dict[str, Future[bytes]] = {}

    def __enter__(self) -> ProcessPoolTaskExecutor:
        self._start()
        self._held += 1
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._held -= 1
        if self._held == 0:
            self._close()

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.max_workers, mp_context=context)
            # Start every worker now. The pool starts one per submit only while none is
            # idle: a first task quicker than a worker's start-up (the preflight's probe)
            # left later builds on one worker.
            for _ in range(self.max_workers):
                self._pool.submit(_started)
        return self._pool

    def _close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    async def setup(self) -> None:
        """Start the pool (its workers start on first use)."""
        self._start()

    async def teardown(self) -> None:
        """Close the pool, unless `with` holds it open."""
        self._payloads.clear()
        if self._held == 0:
            await asyncio.to_thread(self._close)

    async def cancel(self, task: BaseTask) -> None:
        """Cancel a task that has not started in a worker yet."""
        future = self._inflight.get(task.id)
        if future is not None:
            future.cancel()

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.wrap_future(self._start().submit(fn, *args))
        except BrokenProcessPool as exc:
            self._replace()
            raise WorkerLostError(f"a process pool worker died while loading tasks: {exc}") from exc

    async def _run(self, task: BaseTask, payload: bytes) -> bytes:
        pool = self._start()
        future = pool.submit(run_job, payload, self.name)
        self._inflight[task.id] = future
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            self._replace(pool)
            raise WorkerLostError(
                f"the worker process running task {type(task).get_name()} ({task.id[:12]}) "
                "died (killed, or out of memory); nothing of its output was published. "
                "Build again to run it again.",
                task_id=task.id,
            ) from exc
        finally:
            self._inflight.pop(task.id, None)

    def _replace(self, broken: ProcessPoolExecutor | None = None) -> None:
        """Drop a broken pool; the next submit starts a fresh one."""
        if broken is None or self._pool is broken:
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)


def _started() -> None:
    """A no-op for each new worker: submitting it makes the pool start the worker."""
