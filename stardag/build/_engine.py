"""The build engine behind `sd.build` and its three siblings.

A build has three phases: discovery (walk from the requested tasks, stopping at
complete ones), a cycle check, then execution. Execution is driven by
completions: when a task finishes, whoever finished it (a worker thread or the
event loop) updates the graph under one lock and dispatches what became ready.

- Sync tasks run on worker threads. A worker that finishes a task picks the
  next ready one itself, so a chain of sync tasks never waits on a thread hop.
  By default the pool is elastic: one worker to begin with, and another only
  while every worker has been on one task for `GROW_AFTER` with more waiting, so
  short tasks do not fight over the GIL while slow or I/O-bound ones overlap. A
  worker retires after a short task when no other worker is held by one that long
  (one worker always stays): a stall that grew the pool (a garbage collection, the
  OS preempting the thread) costs one thread start, not a second thread for the
  rest of the build.
- Async tasks run on the event loop.
- Sequential builds run everything on the event loop, one task at a time.

A task whose `run()` yields (dynamic dependencies) hands its generator to the
event loop, which builds what it yielded and then queues the generator to resume.

With a `task_executor` other than the in-process default, tasks routed to it
run elsewhere (`stardag.build._executor`): the event loop submits each one and
awaits its outcome; this process stays the coordinator of everything else. With
a `ConcurrencyConfig`, a task takes its slots (`_limits`) before it is handed to
any executor, and gives them back when it finishes or suspends on what it yielded.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import inspect
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from stardag._errors import (
    BuildInterruptedError,
    DependencyCycleError,
    StardagError,
    TaskFailedError,
)
from stardag.build._events import BuildEvent, BuildListener, EventKind
from stardag.build._executor import (
    RunPlace,
    TaskExecutor,
    TaskFailed,
    TaskYielded,
    as_outcome,
)
from stardag.build._interrupt import PublishGate, abandoning_message, say, waiting_message
from stardag.build._limits import ConcurrencyConfig, Limiter
from stardag.build._routing import InProcessTaskExecutor, RoutedTaskExecutor
from stardag.task._base import BaseTask, flatten_task_struct
from stardag.task._stored import Task

if TYPE_CHECKING:
    from stardag.build._claims import Claimer
    from stardag.build._summary import BuildSummary, FailMode


class State(enum.Enum):
    """Where a task is in this build."""

    PENDING = 0  # waiting for dependencies
    QUEUED = 1  # dispatched, running, or suspended on what it yielded
    DONE = 2
    CACHED = 3
    FAILED = 4
    SKIPPED = 5
    INTERRUPTED = 6  # not run, or abandoned, because the build was interrupted


T = TypeVar("T")
FINISHED = (State.DONE, State.CACHED)
# The elastic pool adds a worker once every worker has been on one task this long
# (seconds) while others wait: a short task never waits this long for a thread, and a
# slow or I/O-bound one loses little before the next starts beside it. Twice the
# interpreter's 5 ms switch interval: a short task that waits for the GIL while one of
# the build's own threads (the recorder's, the claimer's) holds it is not held.
GROW_AFTER = 0.010
BROKEN = (State.FAILED, State.SKIPPED, State.INTERRUPTED)
_UNSEEN, _ON_PATH, _DONE = 0, 1, 2  # marks of the cycle check's walk


NONE: tuple[Any, ...] = ()  # a node's empty deps, dependents and waiters: one shared tuple


class Node:
    """One task id in the build graph.

    Memory per task is what a 100,000-task build pays for: `deps`, `dependents`
    and `waiters` stay the shared empty tuple until a node has some, and a
    finished node lets go of all three (`Engine.release_dependents`): nothing
    reads them once its dependents were released and its waiters woken.
    """

    __slots__ = (
        "dependents",
        "deps",
        "executor",
        "id",
        "is_async",
        "state",
        "suspended",
        "task",
        "waiters",
        "waiting",
        "where",
    )

    def __init__(self, task: BaseTask, dual_async: bool = True) -> None:
        self.task = task
        self.id = task.id
        self.is_async = _is_async(task, dual_async)
        self.deps: Sequence[Node] = NONE
        self.dependents: Sequence[Node] = NONE
        self.waiting = 0  # unfinished static dependencies
        self.state = State.PENDING
        self.waiters: Sequence[DynamicWait] = NONE  # suspended tasks that yielded this one
        self.suspended: DynamicWait | None = None  # what this task waits on, once it yielded
        self.executor: TaskExecutor | None = None  # None: the engine's own threads and loop
        self.where: Any = None  # RunPlace of a task run by an executor

    def describe(self) -> str:
        return f"{type(self.task).get_name()} ({self.id[:12]})"


class DynamicWait:
    """A task suspended on the tasks it yielded; notified under the engine lock."""

    def __init__(self, loop: asyncio.AbstractEventLoop, waiting_on: list[Node]) -> None:
        self.loop = loop
        self.waiting_on = waiting_on
        self.pending = {n.id for n in waiting_on}
        self.future: asyncio.Future[None] = loop.create_future()

    def finished(self, node: Node) -> None:
        self.pending.discard(node.id)
        if not self.pending:
            self.loop.call_soon_threadsafe(_settle_future, self.future, None)

    def failed(self, node: Node) -> None:
        error = _broken_dependency(node)
        self.loop.call_soon_threadsafe(_settle_future, self.future, error)


def _broken_dependency(node: Node) -> TaskFailedError:
    """The error a task that yielded `node` fails (or stops) with."""
    if node.state is State.INTERRUPTED:
        return BuildInterruptedError(
            f"dynamic dependency {node.describe()} was interrupted", task_id=node.id
        )
    return TaskFailedError(f"dynamic dependency {node.describe()} failed", task_id=node.id)


def _settle_future(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _uses_store_completeness(task: BaseTask) -> bool:
    return type(task).complete is Task.complete


def _store_checked(cls: type[BaseTask]) -> bool:
    """Whether the store alone says if tasks of `cls` are complete, through the sync
    `complete()` (neither it nor `complete_aio()` overridden)."""
    return cls.complete is Task.complete and cls.complete_aio is BaseTask.complete_aio


def _is_async(task: BaseTask, dual_async: bool = True) -> bool:
    """Whether the build runs `task` through `run_aio()` (else through `run()`).

    A task that defines both (a dual task) goes by `dual_async`: the build's
    `dual_run_default`.
    """
    cls = type(task)
    declared = getattr(cls, "__stardag_is_async__", None)
    if declared is not None:
        return bool(declared)
    if cls.run_aio is BaseTask.run_aio:
        return False
    return dual_async or cls.run is BaseTask.run


class Engine:
    """One build: discovery, cycle check, then completion-driven execution."""

    def __init__(
        self,
        *,
        summary: BuildSummary,
        sequential: bool,
        fail_mode: FailMode,
        max_workers: int | None,
        listeners: Sequence[BuildListener],
        dual_async: bool = True,
        sync_mode: str = "thread",
        executor: TaskExecutor | None = None,
        concurrency: ConcurrencyConfig | None = None,
    ) -> None:
        self.summary = summary
        self.sequential = sequential
        # How tasks run (the entry points' dual_run_default and sync_run_default):
        # a dual task through run_aio() or run(); a sync task on a worker thread
        # ("thread") or on the event loop's thread ("blocking").
        self.dual_async = dual_async
        self.sync_blocking = sync_mode == "blocking"
        self.fail_fast = fail_mode.value == "fail_fast"
        # Like Dask's threaded scheduler: up to one thread per core by default. Sync Python
        # tasks share the GIL, so more threads than cores mostly adds contention; and
        # short ones run fastest on one thread, so the default pool grows only while
        # its threads are stuck on long tasks (`grow`). `max_workers` starts them all.
        self.workers = 1 if sequential else (max_workers or max(2, os.cpu_count() or 1))
        self.elastic = not sequential and max_workers is None
        self.threads: list[threading.Thread] = []
        # Per worker slot: when its current task began (monotonic), or None while it is
        # idle. `live` are the slots of running workers; a retired worker's slot is reused.
        self.busy_since: list[float | None] = []
        self.live: set[int] = set()
        self.growth_armed = False  # a `grow` check is scheduled on the loop
        self.threads_closed = False
        self.listeners = list(listeners)
        self.nodes: dict[str, Node] = {}
        self.lock = threading.RLock()
        self.outstanding = 0  # dispatched and not finished
        self.stopping = False
        self.first_error: BaseException | None = None
        self.first_failed: BaseTask | None = None
        # Ctrl-C: the first stops starting tasks, the second abandons the running ones.
        self.interrupts = 0
        self.halted = False  # interrupted or cancelled: what does not run is "interrupted"
        self.running: dict[str, Node] = {}  # started and not finished (suspended included)
        self.gate = PublishGate()  # closed when the build abandons its running tasks
        self.loop_thread_task: Node | None = None  # a sync task running on the loop thread
        self.sync_queue: queue.SimpleQueue[tuple[Node, Any] | None] = queue.SimpleQueue()
        self.loop_queue: deque[tuple[Node, Any]] = deque()  # sequential builds only
        self.background: set[asyncio.Future[None]] = set()
        self.remote_hits: dict[str, str] = {}  # task id -> remote URL it was fetched from
        # Per worker thread: `next` is None while the worker may claim the next ready
        # task for itself, the claimed item once it has, False elsewhere.
        self.local = threading.local()
        # Registry claims (`_claims.Claimer`): a ready task runs once its claim is won.
        self.claimer: Claimer | None = None
        # Executors: None when every task runs in process (the default, and the fast path).
        self.executor = None if isinstance(executor, InProcessTaskExecutor) else executor
        self.limiter = Limiter(concurrency) if concurrency and not sequential else None
        self.in_flight: dict[str, Node] = {}  # submitted to an executor, not finished

    # -- events -----------------------------------------------------------------
    def emit(self, kind: EventKind, **details: Any) -> None:
        """Deliver one event to every listener (always called under the lock)."""
        if self.listeners:
            event = BuildEvent(kind, self.summary.build_id, total=len(self.nodes), **details)
            for listener in self.listeners:
                listener.handle(event)

    # -- the whole build --------------------------------------------------------------
    async def run(self, roots: Sequence[BaseTask]) -> None:
        self.loop = asyncio.get_running_loop()
        self.loop_ident = threading.get_ident()
        self.idle = asyncio.Event()
        self.wake = asyncio.Event()
        self.async_slots = asyncio.Semaphore(max(self.workers, 32))
        with self.lock:
            self.emit(EventKind.BUILD_STARTED, roots=tuple(roots))
        if self.executor is not None:
            await self.executor.setup()
        try:
            await self.execute(roots)
            if self.gate.closed:  # abandoned (a second Ctrl-C): stop what workers still run
                await self.cancel_remote()
        except BaseException:
            await self.cancel_remote()
            raise
        finally:
            if self.executor is not None:
                await self.executor.teardown()

    async def execute(self, roots: Sequence[BaseTask]) -> None:
        new = await self.discover(roots)
        self.check_acyclic(new)
        await self.plan(new)
        with self.lock:
            self.schedule(new)
            if self.outstanding == 0:
                self.idle.set()
        if not self.sequential:
            self.start_workers(1 if self.elastic else self.workers)
        try:
            if self.sequential:
                await self.consume_on_loop()
            await self.idle.wait()
        except asyncio.CancelledError:
            self.abandon()  # the caller cancelled the build: stop at once
            raise
        finally:
            with self.lock:  # `grow` runs on this thread too: no worker starts after this
                self.threads_closed = True
                threads = list(self.threads)
            for _ in threads:
                self.sync_queue.put(None)
            if not self.gate.closed:  # abandoned workers finish on their own, unrecorded
                for thread in threads:
                    await asyncio.to_thread(thread.join)

    async def plan(self, nodes: list[Node]) -> None:
        """Before new tasks can run: their limit names, their executor, its preflight.

        Every error here (an unknown limit or executor, a task that cannot be
        pickled or imported by a worker) comes before any of these tasks runs.
        """
        pending = [n for n in nodes if n.state is State.PENDING]
        if self.limiter is not None:
            for node in pending:
                self.limiter.check(node.task)
        if self.executor is None or not pending:
            return
        routed = self.executor if isinstance(self.executor, RoutedTaskExecutor) else None
        shipped: list[Node] = []
        for node in pending:
            chosen = routed.route(node.task) if routed is not None else self.executor
            if not isinstance(chosen, InProcessTaskExecutor):
                node.executor = chosen
                shipped.append(node)
        if shipped:
            await self.executor.preflight([n.task for n in shipped])

    async def cancel_remote(self) -> None:
        """Best effort: cancel what executors still run for an interrupted build."""
        with self.lock:
            running = list(self.in_flight.values())
        for node in running:
            if node.executor is not None:
                try:
                    await node.executor.cancel(node.task)
                except Exception:  # noqa: BLE001  # the interruption is what gets reported
                    continue

    def start_workers(self, count: int) -> None:
        """Start `count` more worker threads (called on the loop's thread, under the lock)."""
        self.threads = [t for t in self.threads if t.is_alive()]  # drop retired ones
        for _ in range(count):
            free = [s for s in range(len(self.busy_since)) if s not in self.live]
            slot = free[0] if free else len(self.busy_since)
            if not free:
                self.busy_since.append(None)
            self.busy_since[slot] = None
            self.live.add(slot)
            # Each worker runs in a copy of this context: get_current_build_id() works there.
            thread = threading.Thread(
                target=contextvars.copy_context().run,
                args=(self.worker, slot),
                name=f"stardag-{slot}",
                daemon=True,
            )
            self.threads.append(thread)
            thread.start()

    def arm_growth(self) -> None:
        """Check after `GROW_AFTER` whether the elastic pool needs another thread (any
        thread, under the lock: armed once, however many tasks are queued meanwhile)."""
        if not self.growth_armed and not self.threads_closed:
            self.growth_armed = True
            if threading.get_ident() == self.loop_ident:
                self.loop.call_later(GROW_AFTER, self.grow)
            else:
                self.loop.call_soon_threadsafe(self.loop.call_later, GROW_AFTER, self.grow)

    def grow(self) -> None:
        """On the loop: one more worker if every worker has been on one task for
        `GROW_AFTER` while tasks wait; checked again while that stays so."""
        with self.lock:
            self.growth_armed = False
            if self.threads_closed or len(self.live) >= self.workers:
                return
            if self.sync_queue.empty():
                return  # armed again by the next task queued
            if all(self.held(slot) for slot in self.live):
                self.start_workers(1)
            self.arm_growth()

    def held(self, slot: int) -> bool:
        """Whether the worker in `slot` has been on one task for `GROW_AFTER` or more."""
        since = self.busy_since[slot]
        return since is not None and since <= time.monotonic() - GROW_AFTER

    def retire(self, slot: int) -> bool:
        """After a short task: True if this worker should end (the elastic pool shrinks).

        It stays while another worker is held by a task (the reason it was added), and
        the last worker always stays. (A worker whose own task was long stays too: the
        worker loop asks only after a short one.)
        """
        with self.lock:
            if len(self.live) < 2 or any(self.held(s) for s in self.live if s != slot):
                return False
            self.live.discard(slot)
            self.arm_growth()  # watch for the next task that holds a worker
            return True

    # -- discovery --------------------------------------------------------------------
    async def discover(self, roots: Iterable[BaseTask]) -> list[Node]:
        """Add every unknown task reachable from `roots` through incomplete tasks."""
        new: list[Node] = []
        found: list[tuple[Node, list[BaseTask]]] = []  # each incomplete node's dependencies
        with self.lock:
            frontier = self._admit(roots)
        while frontier:
            new.extend(frontier)
            flags = await self.completeness(frontier)
            following: list[BaseTask] = []
            with self.lock:
                for node, complete in zip(frontier, flags, strict=True):
                    if complete:
                        node.state = State.CACHED
                        self.summary.already_complete += 1
                        remote = self.remote_hits.get(
                            node.id
                        )  # read through (stardag.remote._sharing)
                        self.summary.remote_hits += remote is not None
                        self.emit(EventKind.TASK_CACHED, task=node.task, remote=remote)
                    else:
                        deps = flatten_task_struct(node.task.requires())
                        if deps:
                            found.append((node, deps))
                            following.extend(deps)
                frontier = self._admit(following)
        with self.lock:
            nodes = self.nodes
            for node, deps in found:
                node.deps = tuple([nodes[d.id] for d in deps])  # a tuple: 16 B less
            self.summary.discovered = len(nodes)
        return new

    def _admit(self, tasks: Iterable[BaseTask]) -> list[Node]:
        admitted = []
        for task in tasks:
            if not isinstance(task, BaseTask):
                raise TypeError(f"expected a task, got {type(task).__qualname__}: {task!r}")
            if task.id not in self.nodes:
                node = self.nodes[task.id] = Node(task, self.dual_async)
                admitted.append(node)
        return admitted

    async def completeness(self, nodes: list[Node]) -> list[bool]:
        """Store checks run inline (they are fast); user-defined ones concurrently."""
        flags: list[bool] = [False] * len(nodes)
        slow: list[tuple[int, Node]] = []
        for index, node in enumerate(nodes):
            task = node.task
            if _store_checked(type(task)):  # the common case, without a coroutine per task
                flags[index] = task.complete() or self.read_through(task)
            elif self.sequential or _uses_store_completeness(task):
                flags[index] = await self.is_complete(task) or self.read_through(task)
            else:
                slow.append((index, node))
        if slow:
            results = await asyncio.gather(*(self.is_complete(n.task) for _, n in slow))
            for (index, _), result in zip(slow, results, strict=True):
                flags[index] = result
        return flags

    def read_through(self, task: BaseTask) -> bool:
        """Remote read-through: fetch a store-backed task missing here from the active remote.

        Owned by `stardag.remote._sharing`; with no remote configured it is one cached lookup.
        A fetched task counts as cached, and its TASK_CACHED event names the remote.
        """
        if not _uses_store_completeness(task):
            return False
        from stardag.remote._sharing import fetch_into_local

        remote = fetch_into_local(task)
        if remote is None:
            return False
        self.remote_hits[task.id] = remote
        return True

    async def is_complete(self, task: BaseTask) -> bool:
        if type(task).complete_aio is not BaseTask.complete_aio:
            return bool(await task.complete_aio())
        if self.sequential or _uses_store_completeness(task):
            return bool(task.complete())
        return bool(await asyncio.to_thread(task.complete))

    # -- cycles -------------------------------------------------------------------------
    def check_acyclic(self, nodes: list[Node]) -> None:
        """Raise `DependencyCycleError` if the incomplete new nodes contain a cycle."""
        # Only new nodes can form a cycle among themselves: older nodes never depend
        # on newer ones. (A yielded task that needs its yielder is checked apart.)
        # A depth-first walk down `deps` with one mark per node (memory: one dict).
        marks = {n.id: _UNSEEN for n in nodes if n.state is State.PENDING}
        for start in nodes:
            if marks.get(start.id) != _UNSEEN:
                continue
            marks[start.id] = _ON_PATH
            path: list[tuple[Node, Iterator[Node]]] = [(start, iter(start.deps))]
            while path:
                node, deps = path[-1]
                for dep in deps:
                    mark = marks.get(dep.id)
                    if mark == _UNSEEN:
                        marks[dep.id] = _ON_PATH
                        path.append((dep, iter(dep.deps)))
                        break
                    if mark == _ON_PATH:
                        self._cycle_error([n for n, _ in path], dep)
                else:
                    marks[node.id] = _DONE
                    path.pop()

    def _cycle_error(self, path: list[Node], back_to: Node) -> None:
        """Raise the `DependencyCycleError` of a walk's path that leads back to `back_to`."""
        ids = [n.id for n in path]
        cycle = [*path[ids.index(back_to.id) :], back_to]
        raise DependencyCycleError(
            "dependency cycle: "
            + " -> ".join(n.describe() for n in cycle)
            + "; a task cannot (even indirectly) require itself",
            cycle=[n.id for n in cycle],
        )

    # -- scheduling (under the lock) ------------------------------------------------------
    def schedule(self, nodes: list[Node]) -> None:
        """Wire new pending nodes to their dependencies; dispatch the ready ones."""
        if self.claimer is None:
            self._schedule(nodes)
            return
        with self.claimer.together():  # the ready ones are claimed in one batch
            self._schedule(nodes)

    def _schedule(self, nodes: list[Node]) -> None:
        for node in nodes:
            if node.state is not State.PENDING:
                continue
            for dep in node.deps:
                if dep.state in FINISHED:
                    continue
                if dep.state in BROKEN:
                    self.skip(node)
                    break
                dep.dependents = _appended(dep.dependents, node)
                node.waiting += 1
            if node.state is State.PENDING and node.waiting == 0:
                self.dispatch(node, None)

    def dispatch(self, node: Node, resume: Any) -> None:
        """Queue a node to start (`resume` None) or a suspended generator to go on."""
        if resume is None:
            if self.stopping:
                self.skip(node)
                return
            node.state = State.QUEUED
            self.outstanding += 1
            if self.claimer is not None and not self.claimer.want(node):
                return  # submitted once its claim is won (`claim_won`)
        self.submit(node, resume)

    def submit(self, node: Node, resume: Any) -> None:
        """Hand a queued node (or a suspended generator) to what runs it, slots taken."""
        if self.limiter is not None and not self.limiter.admit(
            node.id, lambda: self.send(node, resume)
        ):
            return
        self.send(node, resume)

    def send(self, node: Node, resume: Any) -> None:
        """Hand a node (its claim won, its slots taken) to whatever runs it."""
        if node.executor is not None:
            self.loop.call_soon_threadsafe(self.spawn_remote, node)
        elif self.sequential:
            self.loop_queue.append((node, resume))
            self.loop.call_soon_threadsafe(self.wake.set)
        elif not node.is_async and self.sync_blocking:
            self.loop.call_soon_threadsafe(self.run_sync, node, resume)
        elif node.is_async:
            self.loop.call_soon_threadsafe(self.spawn_async, node, resume)
        elif getattr(self.local, "next", False) is None:
            # A worker that just finished a task runs one newly ready task itself:
            # along a chain no other thread has to wake up.
            self.local.next = (node, resume)
        else:
            self.sync_queue.put((node, resume))
            if self.elastic and len(self.live) < self.workers:
                self.arm_growth()

    def finish(self, node: Node, error: BaseException | None) -> None:
        """Record a node's outcome and release what waited on it."""
        self.outstanding -= 1
        self.running.pop(node.id, None)
        if self.limiter is not None:
            self.limiter.release(node.id)
        if isinstance(error, BuildInterruptedError):
            self.interrupt_node(node, error)
        elif error is None:
            node.state = State.DONE
            self.summary.ran += 1
            self.release_dependents(node)
        else:
            self.fail(node, error)
        if self.outstanding == 0:
            self.loop.call_soon_threadsafe(self.idle.set)

    def release_dependents(self, node: Node) -> None:
        """A node is finished: dispatch what waited only on it, wake what yielded it."""
        for dependent in node.dependents:
            dependent.waiting -= 1
            if dependent.waiting == 0 and dependent.state is State.PENDING:
                self.dispatch(dependent, None)
        for waiter in node.waiters:
            waiter.finished(node)
        # Nothing reads these once a node is finished: let them go (memory per task).
        node.deps = node.dependents = node.waiters = NONE

    # -- claims (called by the claimer's thread) -------------------------------------------
    def claim_won(self, node: Node) -> None:
        """This build holds the node's claim: run it (or skip it if the build is stopping)."""
        with self.lock:
            if not self.stopping:
                self.submit(node, None)
                return
            self.drop(node)
        if self.claimer is not None:
            self.claimer.release(node.id, None)

    def claim_done_elsewhere(self, node: Node, holder: str | None) -> None:
        """Another builder computed the node while this one waited: a cache hit."""
        with self.lock:
            if self.gate.closed:
                return  # abandoned: every node has its outcome already
            self.outstanding -= 1
            node.state = State.CACHED
            self.summary.already_complete += 1
            self.emit(EventKind.TASK_CACHED, task=node.task)
            self.release_dependents(node)
            if self.outstanding == 0:
                self.loop.call_soon_threadsafe(self.idle.set)

    def claim_failed_elsewhere(self, node: Node, holder: str, error: str) -> None:
        """The node failed in the builder that held it while this one waited."""
        failure = TaskFailedError(
            f"task {node.describe()} failed in build {holder}, which held its claim while "
            f"this build waited: {error}. Build again to retry it",
            task_id=node.id,
        )
        with self.lock:
            if self.gate.closed:
                return  # abandoned: every node has its outcome already
            self.outstanding -= 1
            self.fail(node, failure)
            if self.outstanding == 0:
                self.loop.call_soon_threadsafe(self.idle.set)

    def ahead_of(self, nodes: list[Node], held: set[str]) -> list[Node]:
        """Pending dependents of `nodes` that only this build's claims stand before.

        Each has every dependency finished or in `held` (claimed by this build), so no
        other builder can run it first: the claimer may claim it before it is ready.
        Read without the lock (the claimer's thread calls it): a stale state only
        leaves a node out, or claims one the claimer then hands back (`may_run`).
        """
        if self.stopping:
            return []
        found: dict[str, Node] = {}
        for node in nodes:
            for dependent in node.dependents:
                if (
                    dependent.state is State.PENDING
                    and dependent.id not in held
                    and dependent.id not in found
                    and all(d.state in FINISHED or d.id in held for d in dependent.deps)
                ):
                    found[dependent.id] = dependent
        return list(found.values())

    def may_run(self, node: Node) -> bool:
        """Whether a node claimed ahead can still run here (pending or queued)."""
        return node.state in (State.PENDING, State.QUEUED)

    def drop(self, node: Node) -> None:
        """Skip a queued node that will not run after all (the build is stopping)."""
        if self.gate.closed:
            return  # abandoned: every node has its outcome already
        node.state = State.PENDING
        self.outstanding -= 1
        if self.limiter is not None:
            self.limiter.release(node.id)
        self.skip(node)
        if self.outstanding == 0:
            self.loop.call_soon_threadsafe(self.idle.set)

    def fail(self, node: Node, error: BaseException) -> None:
        node.state = State.FAILED
        self.summary.failed += 1
        self.summary.failures[node.id] = error
        self.summary.names[node.id] = type(node.task).get_name()
        self.emit(
            EventKind.TASK_FAILED,
            task=node.task,
            error=error,
            dynamic=_dynamic(node),
            where=node.where,
        )
        if self.first_error is None:
            self.first_error = error
            self.first_failed = node.task
        if self.fail_fast:
            self.stopping = True
        for waiter in node.waiters:
            waiter.failed(node)
        for dependent in node.dependents:
            self.skip(dependent)

    def skip(self, node: Node) -> None:
        """Mark a pending node, and everything waiting on it, as skipped.

        Once the build is interrupted, what it does not start is interrupted instead.
        """
        interrupted = self.halted
        stack = [node]
        while stack:
            current = stack.pop()
            if current.state is not State.PENDING:
                continue
            if interrupted:
                current.state = State.INTERRUPTED
                self.summary.interrupted += 1
                self.emit(EventKind.TASK_INTERRUPTED, task=current.task)
            else:
                current.state = State.SKIPPED
                self.summary.skipped += 1
                self.emit(EventKind.TASK_SKIPPED, task=current.task)
            for waiter in current.waiters:
                waiter.failed(current)
            if self.claimer is not None:
                self.claimer.forget(current.id)  # a claim won ahead goes back
            stack.extend(current.dependents)

    def interrupt_node(self, node: Node, error: BaseException | None) -> None:
        """A started task the interrupt stopped: neither done nor failed."""
        node.state = State.INTERRUPTED
        self.summary.interrupted += 1
        self.emit(EventKind.TASK_INTERRUPTED, task=node.task, error=error, dynamic=_dynamic(node))
        for waiter in node.waiters:
            waiter.failed(node)
        for dependent in node.dependents:
            self.skip(dependent)

    # -- interrupts (Ctrl-C) ----------------------------------------------------------
    def signal(self) -> None:
        """What SIGINT does (called in the main thread, between any two bytecodes).

        It only sets flags, writes straight to fd 2 and schedules work on the loop:
        the code it interrupts may hold the engine lock halfway through an update.
        The first signal stops starting tasks; the second abandons the running ones
        (in a sequential build it also interrupts the task running on the loop). It is
        safe from any thread.
        """
        self.interrupts += 1
        self.halted = self.stopping = True
        loop: asyncio.AbstractEventLoop | None = getattr(self, "loop", None)
        if self.interrupts == 1:
            say(waiting_message(_names(self.running.values())))
            if loop is not None:  # else nothing started yet: the build stops as it schedules
                loop.call_soon_threadsafe(self.after_interrupt)
            return
        if self.interrupts == 2:
            say(abandoning_message(_names(self.running.values())))
        if loop is not None:
            loop.call_soon_threadsafe(self.abandon)
        if self.loop_thread_task is not None and threading.get_ident() == self.loop_ident:
            raise KeyboardInterrupt  # lands in the task running on this thread

    def interrupt_from_task(self, node: Node) -> None:
        """A task raised KeyboardInterrupt: stop the build as a first Ctrl-C does."""
        with self.lock:
            if self.interrupts:
                return
            self.interrupts = 1
            self.halted = self.stopping = True
            others = [n for n in self.running.values() if n is not node]
            say(waiting_message(_names(others), f"{node.describe()} raised KeyboardInterrupt"))

    def after_interrupt(self) -> None:
        with self.lock:
            if self.outstanding == 0:
                self.idle.set()

    def abandon(self) -> None:
        """End the build now: running tasks are recorded as interrupted, unless published."""
        self.gate.close()  # waits for records being published right now
        with self.lock:
            self.halted = self.stopping = True
            for node in list(self.running.values()):
                state = node.task._run_state or {}
                record = state.get("record")
                if record is not None:  # its output is in the store: it completed
                    node.state = State.DONE
                    self.summary.ran += 1
                    self.emit(EventKind.TASK_COMPLETED, task=node.task, record=record)
                else:
                    self.interrupt_node(node, None)
            self.running.clear()
            for node in self.nodes.values():  # queued or waiting: never started
                if node.state is State.QUEUED:
                    node.state = State.PENDING
                self.skip(node)
            self.outstanding = 0
            for future in list(self.background):
                future.cancel()
            self.idle.set()

    # -- sync tasks on worker threads -----------------------------------------------------
    def worker(self, slot: int) -> None:
        busy = self.busy_since
        clock = time.monotonic
        while (item := self.sync_queue.get()) is not None:
            busy[slot] = began = clock()
            while item is not None:
                self.local.next = None
                self.run_sync(*item)
                item, self.local.next = self.local.next, False
                if item is not None:
                    busy[slot] = began = clock()
            busy[slot] = None
            if self.elastic and clock() - began < GROW_AFTER and self.retire(slot):
                return  # its last task was short: so are others, likely

    def run_sync(self, node: Node, resume: Any) -> None:
        """Run (or resume) a sync task; on a yield, hand the generator to the loop."""
        task = node.task
        try:
            if resume is None and self.begin(node):
                return
            # A second Ctrl-C raises KeyboardInterrupt in a task on the loop's thread.
            on_loop = threading.get_ident() == self.loop_ident
            self.loop_thread_task = node if on_loop else None
            if resume is None:
                task._check_before_run()
                result = task.run()
                if inspect.isgenerator(result):
                    resume = result
            if resume is not None:
                done, result = _step(resume)
                if not done:
                    self.loop_thread_task = None
                    self.loop.call_soon_threadsafe(self.spawn_yield, node, resume, result)
                    return
            record = self.settle_sync(task, result)
            self.loop_thread_task = None
        except BaseException as exc:  # noqa: BLE001  # a task's failure is data for the build
            self.loop_thread_task = None
            self.end(node, None, self.task_error(node, exc))
        else:
            self.end(node, record, None)

    def task_error(self, node: Node, exc: BaseException) -> BaseException:
        """What a task's exception means for the build; none may escape into the engine."""
        if isinstance(exc, Exception):
            return exc
        error: TaskFailedError
        if isinstance(exc, KeyboardInterrupt):
            self.interrupt_from_task(node)
            error = BuildInterruptedError(
                f"task {node.describe()} was interrupted (KeyboardInterrupt)", task_id=node.id
            )
        else:  # SystemExit, GeneratorExit, CancelledError or another BaseException
            error = TaskFailedError(
                f"task {node.describe()} raised {type(exc).__name__}({exc}): a task must not "
                "exit or stop the build; raise an Exception to fail it",
                task_id=node.id,
            )
        error.__cause__ = exc
        error.__suppress_context__ = True
        return error

    def begin(self, node: Node) -> bool:
        """Mark a task started; True if the build is stopping and it must not run."""
        with self.lock:
            if self.stopping:
                if self.gate.closed:
                    return True  # abandoned: the build has ended
                self.drop(node)
                if self.claimer is not None:
                    self.claimer.release(node.id, None)
                return True
            self.running[node.id] = node
            # What the task requires, as discovered: its save records it without
            # calling requires() again.
            requires = [d.id for d in node.deps]
            node.task._set_run_state({"dynamic": [], "gate": self.gate, "requires": requires})
            if self.listeners:  # (the event's fields cost something to gather)
                self.emit(EventKind.TASK_STARTED, task=node.task, requires=tuple(requires))
        return False

    def end(self, node: Node, record: Any, error: BaseException | None) -> None:
        if error is not None and not isinstance(error, StardagError):
            error.add_note(f"while running task {node.describe()}")
        with self.lock:
            if self.gate.closed:
                return  # abandoned: the build has ended without it
            if error is None and self.listeners:
                self.emit(
                    EventKind.TASK_COMPLETED,
                    task=node.task,
                    record=record,
                    dynamic=_dynamic(node),
                    where=node.where,
                )
            self.finish(node, error)
            node.task._set_run_state(None)
        if self.claimer is not None:  # after the output is saved: a waiter finds it complete
            self.claimer.release(node.id, error)

    def settle_sync(self, task: BaseTask, result: Any) -> Any:
        """Save a returned value, then make sure the task is complete."""
        state = task._run_state or {}
        if result is not None and isinstance(task, Task) and "record" not in state:
            task._save(result)
        record = state.get("record")
        if record is None and not task.complete():
            raise _incomplete(task)
        return record

    # -- async tasks and yields on the event loop -----------------------------------------
    def spawn_async(self, node: Node, resume: Any) -> None:
        self.keep(asyncio.ensure_future(self.run_async(node)))

    def keep(self, future: asyncio.Future[None]) -> None:
        """Hold a reference to a fire-and-forget task until it is done."""
        self.background.add(future)
        future.add_done_callback(self.background.discard)

    async def run_async(self, node: Node) -> None:
        async with self.async_slots:
            await self.run_on_loop(node)

    async def run_on_loop(self, node: Node) -> None:
        """Run an async task to the end, building what it yields as it goes."""
        task = node.task
        try:
            if self.begin(node):
                return
            task._check_before_run()
            outcome = task.run_aio()
            if inspect.isasyncgen(outcome):
                result = await self.drive_async(node, outcome)
            else:
                result = await outcome
                if inspect.isgenerator(result):
                    result = await self.drive_here(node, result)
            record = await self.settle_async(task, result)
        except BaseException as exc:  # a task's failure is data for the build
            if isinstance(exc, asyncio.CancelledError) and self.gate.closed:
                raise  # the build was abandoned and cancelled it
            self.end(node, None, self.task_error(node, exc))
        else:
            self.end(node, record, None)

    async def drive_async(self, node: Node, gen: Any) -> Any:
        try:
            yielded = await gen.__anext__()
            while True:
                await self.suspend(node, yielded)
                yielded = await gen.asend(None)
        except StopAsyncIteration:
            return None

    async def drive_here(self, node: Node, gen: Any) -> Any:
        while True:
            done, value = _step(gen)
            if done:
                return value
            await self.suspend(node, value)

    async def settle_async(self, task: BaseTask, result: Any) -> Any:
        state = task._run_state or {}
        if result is not None and isinstance(task, Task) and "record" not in state:
            task._save(result)
        record = state.get("record")
        if record is None and not await self.is_complete(task):
            raise _incomplete(task)
        return record

    def spawn_yield(self, node: Node, gen: Any, yielded: Any) -> None:
        self.keep(asyncio.ensure_future(self.resume_after(node, gen, yielded)))

    async def resume_after(self, node: Node, gen: Any, yielded: Any) -> None:
        """Build what a sync generator yielded, then queue it to resume."""
        self.give_back(node)
        try:
            await self.wait_dynamic(node, yielded)
        except Exception as exc:  # noqa: BLE001  # the yielding task fails with it
            error: BaseException = exc
            try:
                gen.close()
            except BaseException as late:  # noqa: BLE001  # the generator refused to close
                error = self.task_error(node, late)
            self.end(node, None, error)
            return
        with self.lock:
            self.dispatch(node, gen)

    async def wait_dynamic(self, node: Node, struct: Any) -> None:
        """Build the tasks a running task yielded; return when all are complete."""
        tasks = flatten_task_struct(struct)
        state = node.task._run_state
        if state is not None:
            state["dynamic"].extend(t.id for t in tasks)
        new = await self.discover(tasks)
        self.check_acyclic(new)
        await self.plan(new)
        with self.lock:
            wanted = [self.nodes[t.id] for t in tasks]
            _check_no_wait_cycle(node, wanted)
            self.schedule(new)
            for dep in wanted:
                if dep.state in BROKEN:
                    raise TaskFailedError(
                        f"dynamic dependency {dep.describe()} failed", task_id=dep.id
                    )
            pending = list({d.id: d for d in wanted if d.state not in FINISHED}.values())
            if not pending:
                return
            wait = DynamicWait(self.loop, pending)
            for dep in pending:
                dep.waiters = _appended(dep.waiters, wait)
            node.suspended = wait
        try:
            if self.sequential:
                await self.consume_until(wait.future)
            await wait.future
        finally:
            node.suspended = None

    async def suspend(self, node: Node, struct: Any) -> None:
        """Wait on what a running task yielded, without holding its concurrency slots."""
        if self.limiter is None:
            await self.wait_dynamic(node, struct)
            return
        self.give_back(node)
        await self.wait_dynamic(node, struct)
        resumed: asyncio.Future[None] = self.loop.create_future()
        with self.lock:
            if self.limiter.admit(
                node.id, lambda: self.loop.call_soon_threadsafe(_settle_future, resumed, None)
            ):
                return
        await resumed

    def give_back(self, node: Node) -> None:
        if self.limiter is not None:
            with self.lock:
                self.limiter.release(node.id)

    # -- tasks on other executors (on the event loop) -------------------------------------
    def spawn_remote(self, node: Node) -> None:
        self.keep(asyncio.ensure_future(self.run_remote(node)))

    async def run_remote(self, node: Node) -> None:
        """Submit a task to its executor until it is done, building what it yields."""
        executor = node.executor
        assert executor is not None  # routed by plan()
        try:
            if self.begin(node):
                return
            with self.lock:
                self.in_flight[node.id] = node
            node.where = RunPlace(executor.name, "")
            while True:
                outcome = as_outcome(await executor.submit(node.task), node.where)
                if not isinstance(outcome, TaskYielded):
                    break
                await self.suspend(node, list(outcome.tasks))
            node.where = outcome.where
            if isinstance(outcome, TaskFailed):
                raise outcome.error
            state = node.task._run_state
            if state is not None and outcome.dynamic:
                state["dynamic"] = list(outcome.dynamic)
        except Exception as exc:  # noqa: BLE001  # a task's failure is data for the build
            self.forget_remote(node)
            self.end(node, None, exc)
        else:
            self.forget_remote(node)
            self.end(node, outcome.record, None)

    def forget_remote(self, node: Node) -> None:
        with self.lock:
            self.in_flight.pop(node.id, None)

    # -- sequential builds ----------------------------------------------------------------
    async def consume_on_loop(self) -> None:
        """Run queued work one item at a time on the loop (sequential builds)."""
        idle = asyncio.ensure_future(self.idle.wait())
        await self.consume_until(idle)

    async def consume_until(self, until: asyncio.Future[Any]) -> None:
        """Run queued items until `until` is done.

        An async task suspended on what it yielded calls this too, so its
        dependencies run while it waits, still one task at a time.
        """
        while not until.done():
            if not self.loop_queue:
                self.wake.clear()
                wake = asyncio.ensure_future(self.wake.wait())
                await asyncio.wait([wake, until], return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
                continue
            node, resume = self.loop_queue.popleft()
            if node.is_async and resume is None:
                # A future of its own, so that abandoning the build can cancel it.
                await self.await_cancellable(self.run_on_loop(node))
            elif self.sync_blocking:
                self.run_sync(node, resume)
            else:  # sync_run_default="thread": one at a time, but off the loop
                await self.await_cancellable(asyncio.to_thread(self.run_sync, node, resume))

    async def await_cancellable(self, work: Coroutine[Any, Any, None]) -> None:
        """Await `work` as a kept future: abandoning the build cancels it, not its awaiter."""
        running = asyncio.ensure_future(work)
        self.keep(running)
        await asyncio.wait([running])


def _appended(items: Sequence[T], item: T) -> Sequence[T]:
    """`items` with `item` added: the list itself, a 1-tuple for the shared `NONE` (most
    nodes of a tree have one dependent: 24 B less than a list), else a new list."""
    if isinstance(items, list):
        items.append(item)
        return items
    return (item,) if not items else [*items, item]


def _incomplete(task: BaseTask) -> TaskFailedError:
    return TaskFailedError(
        f"task {type(task).get_name()} ({task.id[:12]}) ran without error but is still "
        "not complete: run() must save its output (or return it)",
        task_id=task.id,
    )


def _step(gen: Any) -> tuple[bool, Any]:
    try:
        return False, gen.send(None)
    except StopIteration as stop:
        return True, stop.value


def _dynamic(node: Node) -> tuple[str, ...]:
    state = node.task._run_state
    return tuple(state["dynamic"]) if state else ()


def _check_no_wait_cycle(node: Node, yielded: list[Node]) -> None:
    """Raise `DependencyCycleError` if a yielded task waits (even indirectly) on `node`.

    A pending task waits on its unfinished static dependencies; a task suspended
    on what it yielded waits on those. A yielded task that reaches back to the
    yielding one would wait forever, through static dependencies, yields, or both.
    """
    came_from: dict[str, Node | None] = {}
    stack: list[tuple[Node, Node | None]] = [(y, None) for y in yielded]
    while stack:
        current, parent = stack.pop()
        if current.id in came_from:
            continue
        came_from[current.id] = parent
        if current.id == node.id:
            path = [current]
            while (step := came_from[path[-1].id]) is not None:
                path.append(step)
            cycle = [node, *reversed(path)]
            raise DependencyCycleError(
                "dependency cycle: "
                + " -> ".join(n.describe() for n in cycle)
                + " (through tasks yielded from run()); a task cannot (even indirectly) "
                "wait on itself",
                cycle=[n.id for n in cycle[:-1]],
            )
        stack.extend((w, current) for w in _waits_on(current))


def _waits_on(node: Node) -> list[Node]:
    """What a task cannot go on without: pending deps, or what it yielded and awaits."""
    if node.state is State.PENDING:
        return [d for d in node.deps if d.state not in FINISHED]
    wait = node.suspended
    if node.state is State.QUEUED and wait is not None:
        return [d for d in wait.waiting_on if d.state not in FINISHED]
    return []


def _names(nodes: Iterable[Node]) -> list[str]:
    return [node.describe() for node in list(nodes)]
