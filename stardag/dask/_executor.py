"""`DaskExecutor`: each ready task becomes one Dask future on a distributed cluster.

The build stays in this process (the coordinator); Dask only runs tasks. A
future's key is `stardag-<task id>`, so Dask itself never runs one task id
twice at once, even for two builds on one cluster; a task submitted again after
its dynamic dependencies were built gets `stardag-<task id>-<n>`. Futures are
released as soon as their outcome is read, so the cluster keeps no results.

Outcomes travel by push: the worker logs each outcome as an event on this
build's own topic, which reaches the coordinator through the scheduler's
batched stream ahead of the future's completion. A `gather` per outcome (a
request to the scheduler, which fetches from the worker) cost a round trip
across three processes per task; the future's value remains the fallback for
an outcome that did not come by push.

Invariant: a worker that dies mid-task is Dask's to handle: the scheduler runs
the task again elsewhere (up to `distributed.scheduler.allowed-failures`), then
gives up (`KilledWorker`), which fails the task with `WorkerLostError`. Either
way the dead worker published nothing: the store writes blob then record.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from stardag._errors import ExecutorError, OptionalDependencyError, WorkerLostError
from stardag.build._shipping import ShippingExecutor
from stardag.build._worker import run_job
from stardag.task._base import BaseTask

try:
    import distributed
except ImportError as exc:  # pragma: no cover  # the extra is not installed
    raise OptionalDependencyError(
        "stardag.dask needs dask.distributed: pip install 'stardag[dask]'", package="distributed"
    ) from exc

if TYPE_CHECKING:
    from distributed import Client

# distributed is only partly typed: its futures and the asynchronous client are Any here.
Future: TypeAlias = Any


def run_on_worker(payload: bytes, key: str | None = None, topic: str | None = None) -> bytes:
    """The function Dask runs: one stardag job on this worker.

    With a `topic`, the outcome is also pushed to the coordinator as an event
    `[key, outcome]` (see the module's docstring); it is returned either way.
    """
    try:
        worker: Any = distributed.get_worker()
    except ValueError:  # not on a worker (a local scheduler): no address to name
        worker = None
    outcome = run_job(payload, DaskExecutor.name, None if worker is None else worker.address)
    if worker is not None and topic is not None:
        worker.log_event(topic, [key, outcome])
    return outcome


class DaskExecutor(ShippingExecutor):
    """Runs tasks on a Dask distributed cluster.

    Args:
        client: a `distributed.Client` (yours: it is never closed here), or the
            scheduler's address (`"tcp://scheduler:8786"`): a client is then
            opened for each build and closed after it.
    """

    name: ClassVar[str] = "dask"

    def __init__(self, client: Client | str) -> None:
        super().__init__()
        self._given = client if not isinstance(client, str) else None
        self.address = client if isinstance(client, str) else None
        self._client: Any = None  # this build's asynchronous client
        self._futures: dict[str, Future] = {}
        self._attempts: dict[str, int] = {}
        self._outcomes: _Outcomes | None = None

    @property
    def client(self) -> Any:
        """The client in use; `ExecutorError` outside a build that opened one."""
        if self._client is None:
            raise ExecutorError(f"DaskExecutor({self.address!r}) is not connected: not in a build")
        return self._client

    async def setup(self) -> None:
        """Open this build's own asynchronous client, on the build's event loop."""
        given: Any = self._given
        address = self.address if given is None else given.scheduler.address
        self._client = await distributed.Client(  # type: ignore[no-untyped-call]  # untyped
            address, asynchronous=True, set_as_default=False
        )
        self._gatherer = _Gatherer(self._client)
        self._outcomes = _Outcomes()
        self._topic = f"stardag-outcomes-{uuid.uuid4().hex}"
        self._client.subscribe_topic(self._topic, self._on_pushed)

    async def teardown(self) -> None:
        """Close this build's client (a client you gave is never closed)."""
        self._payloads.clear()
        self._attempts.clear()
        if self._outcomes is not None:
            self._outcomes.close()
        client, self._client = self._client, None
        if client is not None:
            client.unsubscribe_topic(self._topic)
            await client.close()

    def _on_pushed(self, event: tuple[float, list[Any]]) -> None:
        """Hand an outcome a worker pushed to the build waiting for it."""
        key, outcome = event[1]
        assert self._outcomes is not None  # set up with the client
        self._outcomes.pushed(key, outcome)

    async def cancel(self, task: BaseTask) -> None:
        """Cancel the task's future."""
        future = self._futures.get(task.id)
        if future is not None:
            await self.client.cancel([future])

    async def _result(self, future: Future) -> Any:
        """A future's outcome: pushed by its worker, else read from the ended future."""
        assert self._outcomes is not None  # set up with the client
        pushed = await self._outcomes.outcome(future)
        if pushed is not None:
            return pushed
        if future.status != "finished":
            return await future  # raises its error: cancelled, KilledWorker
        return await self._fetch(future)

    async def _fetch(self, future: Future) -> Any:
        """A finished future's value from its worker: for an outcome that was not pushed."""
        return await self._gatherer.get(future)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        future = self.client.submit(fn, *args, pure=False)
        try:
            return await future
        finally:
            future.release()

    async def _run(self, task: BaseTask, payload: bytes) -> bytes:
        attempt = self._attempts.get(task.id, 0)
        self._attempts[task.id] = attempt + 1
        key = f"stardag-{task.id}" + (f"-{attempt}" if attempt else "")
        future = self.client.submit(
            run_on_worker, payload, key, self._topic, key=key, pure=False, retries=0
        )
        self._futures[task.id] = future
        try:
            data: bytes = await self._result(future)
        except distributed.scheduler.KilledWorker as exc:
            raise WorkerLostError(
                f"the Dask workers running task {type(task).get_name()} ({task.id[:12]}) died "
                f"each time it was tried ({exc}); nothing of its output was published. Check "
                "the workers' memory and logs, then build again.",
                task_id=task.id,
            ) from exc
        except distributed.client.FutureCancelledError as exc:
            raise ExecutorError(
                f"the Dask future of task {type(task).get_name()} ({task.id[:12]}) was "
                f"cancelled: {exc}",
                task_id=task.id,
            ) from exc
        finally:
            self._futures.pop(task.id, None)
            future.release()
        return data


class _Outcomes:
    """Wakes the awaiter of each future when its worker pushes the outcome (on the build's loop).

    A future that ends without a push (its worker died for good, it was cancelled, or
    the push was lost) is noticed by a look at the futures in flight every
    `WATCH_EVERY` seconds. No per-future tracking by Dask: `as_completed` costs a
    coroutine and two notifications per future, a tenth of the coordinator's time.
    """

    WATCH_EVERY = 0.1

    def __init__(self) -> None:
        self.waiting: dict[str, tuple[Future, asyncio.Future[bytes | None]]] = {}
        self.early: dict[str, bytes] = {}  # pushed before its awaiter came (or after it left)
        self.watcher: asyncio.Future[None] | None = None

    def pushed(self, key: str, outcome: bytes) -> None:
        entry = self.waiting.pop(key, None)
        if entry is None:
            self.early[key] = outcome
        elif not entry[1].done():
            entry[1].set_result(outcome)

    async def outcome(self, future: Future) -> bytes | None:
        """The outcome its worker pushed, or None if the future ended without one."""
        early = self.early.pop(future.key, None)
        if early is not None:
            return early
        waiter: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self.waiting[future.key] = (future, waiter)
        if self.watcher is None or self.watcher.done():
            self.watcher = asyncio.ensure_future(self._watch())
        try:
            return await waiter
        finally:
            self.waiting.pop(future.key, None)

    def close(self) -> None:
        """Stop watching (the build is over)."""
        self.early.clear()
        if self.watcher is not None:
            self.watcher.cancel()

    async def _watch(self) -> None:
        while self.waiting:
            await asyncio.sleep(self.WATCH_EVERY)
            for future, waiter in list(self.waiting.values()):
                if future.status != "pending" and not waiter.done():
                    waiter.set_result(None)


class _Gatherer:
    """Fetches finished futures' values in one `gather` per batch, not one call each."""

    def __init__(self, client: Any) -> None:
        self.client = client  # asynchronous
        self.queue: list[tuple[Future, asyncio.Future[Any]]] = []
        self.drain: asyncio.Future[None] | None = None

    async def get(self, future: Future) -> Any:
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queue.append((future, waiter))
        if self.drain is None or self.drain.done():
            self.drain = asyncio.ensure_future(self._drain())
        return await waiter

    async def _drain(self) -> None:
        while self.queue:
            batch, self.queue = self.queue, []
            try:
                values = await self.client.gather([future for future, _ in batch])
            except Exception:  # noqa: BLE001  # one bad future: fetch each on its own
                for future, waiter in batch:
                    try:
                        waiter.set_result(await future)
                    except Exception as exc:  # noqa: BLE001  # handed to its awaiter
                        waiter.set_exception(exc)
                continue
            for (_, waiter), value in zip(batch, values, strict=True):
                if not waiter.done():
                    waiter.set_result(value)
