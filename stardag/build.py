"""The build: walk the DAG from the requested tasks and run what is missing, bottom-up.

One engine (`_Build`) behind four entry points:

- `build(tasks)`: concurrent in this process; async tasks on the event loop,
  sync tasks on a thread pool (`max_workers`).
- `build_aio(tasks)`: the same, awaited inside your event loop.
- `build_sequential(tasks)` / `build_sequential_aio(tasks)`: one task at a time.

Makefile semantics: a complete task is not run and its upstream is not walked;
each task id runs at most once per build. A cycle is an error before anything
runs. `run()` may yield tasks (dynamic dependencies), built before it resumes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import inspect
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stardag._errors import DependencyCycleError, StardagError, TaskFailedError
from stardag._events import BuildEvent, BuildListener, EventKind
from stardag._stored import Task
from stardag._task import BaseTask, flatten_task_struct

__all__ = [
    "BuildFailedError",
    "BuildSummary",
    "FailMode",
    "build",
    "build_aio",
    "build_sequential",
    "build_sequential_aio",
]


class FailMode(str, enum.Enum):
    """What a build does when a task fails."""

    FAIL_FAST = "fail_fast"  # start nothing new, re-raise the task's own exception
    CONTINUE = "continue"  # build every branch that does not depend on the failure


class BuildFailedError(StardagError):
    """Tasks failed in a `FailMode.CONTINUE` build; `.summary` says which and why."""

    def __init__(self, summary: BuildSummary) -> None:
        lines = [f"{len(summary.failures)} task(s) failed:"]
        for task_id, error in summary.failures.items():
            lines.append(f"  {summary.names.get(task_id, '?')} ({task_id[:12]}): {error!r}")
        super().__init__("\n".join(lines))
        self.summary = summary


@dataclass
class BuildSummary:
    """What a build did: counts, and the errors of failed tasks by task id."""

    build_id: str
    discovered: int = 0
    already_complete: int = 0
    ran: int = 0
    failed: int = 0
    skipped: int = 0
    failures: dict[str, BaseException] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    ended: float | None = None

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return self.failed == 0 and self.skipped == 0

    @property
    def duration(self) -> float:
        """Seconds from start to end (or to now while running)."""
        return (self.ended or time.time()) - self.started

    def __str__(self) -> str:
        return (
            f"{self.discovered} discovered, {self.already_complete} already complete, "
            f"{self.ran} ran, {self.failed} failed, {self.skipped} skipped "
            f"in {self.duration:.2f}s"
        )


class _State(enum.Enum):
    PENDING = 0
    RUNNING = 1
    DONE = 2
    CACHED = 3
    FAILED = 4
    SKIPPED = 5


_FINISHED = (_State.DONE, _State.CACHED)


class _Node:
    __slots__ = ("deps", "dependents", "id", "state", "task", "waiters", "waiting")

    def __init__(self, task: BaseTask) -> None:
        self.task = task
        self.id = task.id
        self.deps: list[_Node] = []
        self.dependents: list[_Node] = []
        self.waiting = 0  # unfinished static dependencies
        self.state = _State.PENDING
        self.waiters: list[_DynamicWait] = []  # suspended tasks that yielded this one


class _DynamicWait:
    """A task suspended on the tasks it yielded."""

    def __init__(self, pending: set[str]) -> None:
        self.pending = pending
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finished(self, node: _Node) -> None:
        self.pending.discard(node.id)
        if not self.pending and not self.future.done():
            self.future.set_result(None)

    def failed(self, node: _Node) -> None:
        if not self.future.done():
            self.future.set_exception(
                TaskFailedError(f"dynamic dependency {_name(node)} failed", task_id=node.id)
            )


def _name(node: _Node) -> str:
    return f"{type(node.task).get_name()} ({node.id[:12]})"


def _uses_store_completeness(task: BaseTask) -> bool:
    return type(task).complete is Task.complete


def _is_async(task: BaseTask) -> bool:
    declared = getattr(type(task), "__stardag_is_async__", None)
    if declared is not None:
        return bool(declared)
    return type(task).run_aio is not BaseTask.run_aio


class _Build:
    """One build: discovery, cycle check, then execution by a completion queue."""

    def __init__(
        self,
        *,
        sequential: bool,
        fail_mode: FailMode,
        max_workers: int | None,
        listeners: Sequence[BuildListener],
    ) -> None:
        self.sequential = sequential
        self.fail_mode = FailMode(fail_mode)
        self.max_workers = 1 if sequential else (max_workers or min(32, (os.cpu_count() or 1) + 4))
        self.listeners = list(listeners)
        self.summary = BuildSummary(build_id=uuid.uuid4().hex)
        self.nodes: dict[str, _Node] = {}
        self.ready: deque[_Node] = deque()
        self.inflight = 0  # started and not finished, suspended ones excluded
        self.suspended = 0  # waiting on the tasks they yielded
        self.stopping = False
        self.first_error: BaseException | None = None
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.queue: asyncio.Queue[tuple[_Node | None, BaseException | None]]

    # -- events ---------------------------------------------------------------
    def emit(self, kind: EventKind, **details: Any) -> None:
        if self.listeners:
            event = BuildEvent(kind, self.summary.build_id, **details)
            for listener in self.listeners:
                listener.handle(event)

    # -- entry ----------------------------------------------------------------
    async def run(self, roots: Sequence[BaseTask]) -> BuildSummary:
        self.queue = asyncio.Queue()
        self.emit(EventKind.BUILD_STARTED, roots=tuple(roots))
        try:
            if not self.sequential:
                self.pool = concurrent.futures.ThreadPoolExecutor(
                    self.max_workers, thread_name_prefix="stardag"
                )
            new = await self.discover(roots)
            self.check_acyclic(new)
            self.schedule(new)
            await self.execute()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
            self.summary.ended = time.time()
            self.emit(EventKind.BUILD_ENDED, summary=self.summary)
        if self.first_error is not None and self.fail_mode is FailMode.FAIL_FAST:
            raise self.first_error
        if self.summary.failures:
            raise BuildFailedError(self.summary)
        return self.summary

    # -- discovery --------------------------------------------------------------
    async def discover(self, roots: Iterable[BaseTask]) -> list[_Node]:
        """Add every not-yet-known task reachable from `roots` through incomplete tasks."""
        new: list[_Node] = []
        dep_ids: dict[str, list[str]] = {}
        frontier = self._unknown(roots)
        while frontier:
            for node in frontier:
                self.nodes[node.id] = node
                self.summary.names[node.id] = type(node.task).get_name()
            new.extend(frontier)
            flags = await self.completeness(frontier)
            following: list[BaseTask] = []
            for node, complete in zip(frontier, flags):
                if complete:
                    node.state = _State.CACHED
                    self.summary.already_complete += 1
                    self.emit(EventKind.TASK_CACHED, task=node.task)
                else:
                    deps = flatten_task_struct(node.task.requires())
                    dep_ids[node.id] = [d.id for d in deps]
                    following.extend(deps)
            frontier = self._unknown(following)
        for node in new:
            node.deps = [self.nodes[i] for i in dep_ids.get(node.id, ())]
        self.summary.discovered = len(self.nodes)
        return new

    def _unknown(self, tasks: Iterable[BaseTask]) -> list[_Node]:
        seen: dict[str, _Node] = {}
        for task in tasks:
            if not isinstance(task, BaseTask):
                raise TypeError(f"expected a task, got {type(task).__qualname__}: {task!r}")
            if task.id not in self.nodes and task.id not in seen:
                seen[task.id] = _Node(task)
        return list(seen.values())

    async def completeness(self, nodes: list[_Node]) -> list[bool]:
        """Check completeness: store checks inline, user-defined ones concurrently."""
        flags: list[bool | None] = [None] * len(nodes)
        slow: list[tuple[int, _Node]] = []
        for index, node in enumerate(nodes):
            if self.sequential or _uses_store_completeness(node.task):
                flags[index] = await self._complete(node.task)
            else:
                slow.append((index, node))
        if slow:
            results = await asyncio.gather(*(self._complete(n.task) for _, n in slow))
            for (index, _), result in zip(slow, results):
                flags[index] = result
        return [bool(flag) for flag in flags]

    async def _complete(self, task: BaseTask) -> bool:
        if type(task).complete_aio is not BaseTask.complete_aio:
            return await task.complete_aio()
        if self.pool is None or _uses_store_completeness(task):
            return task.complete()
        return await self.call(task.complete)

    # -- cycles -----------------------------------------------------------------
    def check_acyclic(self, nodes: list[_Node]) -> None:
        """Raise `DependencyCycleError` if the incomplete part of `nodes` has a cycle."""
        # Only new nodes can form a cycle among themselves: older nodes never depend
        # on newer ones. (A yielded task that needs its yielder is checked apart.)
        pending = [n for n in nodes if n.state is _State.PENDING]
        ids = {n.id for n in pending}
        indegree = {n.id: sum(d.id in ids for d in n.deps) for n in pending}
        users: dict[str, list[_Node]] = {}
        for node in pending:
            for dep in node.deps:
                if dep.id in ids:
                    users.setdefault(dep.id, []).append(node)
        queue = deque(n for n in pending if indegree[n.id] == 0)
        ordered = 0
        while queue:
            node = queue.popleft()
            ordered += 1
            for user in users.get(node.id, ()):
                indegree[user.id] -= 1
                if indegree[user.id] == 0:
                    queue.append(user)
        if ordered < len(pending):
            cycle = _find_cycle([n for n in pending if indegree[n.id] > 0])
            names = " -> ".join(_name(n) for n in cycle)
            raise DependencyCycleError(
                f"dependency cycle: {names}; a task cannot (even indirectly) require itself",
                cycle=[n.id for n in cycle],
            )

    # -- scheduling ---------------------------------------------------------------
    def schedule(self, nodes: list[_Node]) -> None:
        """Wire new pending nodes to their dependencies; queue the ready ones."""
        for node in nodes:
            if node.state is not _State.PENDING:
                continue
            for dep in node.deps:
                if dep.state in _FINISHED:
                    continue
                if dep.state in (_State.FAILED, _State.SKIPPED):
                    self.skip(node)
                    break
                dep.dependents.append(node)
                node.waiting += 1
            if node.state is _State.PENDING and node.waiting == 0:
                self.ready.append(node)

    async def execute(self) -> None:
        while self.ready or self.inflight or self.suspended:
            self.fill()
            if not self.inflight and not self.suspended:
                break
            node, error = await self.queue.get()
            if node is not None:
                self.finish(node, error)
        for node in self.ready:
            self.skip(node)
        self.ready.clear()

    def fill(self) -> None:
        while self.ready and not self.stopping and self.inflight < self.max_workers:
            node = self.ready.popleft()
            if node.state is not _State.PENDING:
                continue
            node.state = _State.RUNNING
            self.inflight += 1
            asyncio.ensure_future(self.run_node(node))
        if self.stopping:
            while self.ready:
                self.skip(self.ready.popleft())

    def finish(self, node: _Node, error: BaseException | None) -> None:
        self.inflight -= 1
        if error is None:
            node.state = _State.DONE
            self.summary.ran += 1
            for dependent in node.dependents:
                dependent.waiting -= 1
                if dependent.waiting == 0 and dependent.state is _State.PENDING:
                    self.ready.append(dependent)
            for waiter in node.waiters:
                waiter.finished(node)
            return
        node.state = _State.FAILED
        self.summary.failed += 1
        self.summary.failures[node.id] = error
        self.emit(EventKind.TASK_FAILED, task=node.task, error=error, dynamic=_dynamic(node))
        if self.first_error is None:
            self.first_error = error
        if self.fail_mode is FailMode.FAIL_FAST:
            self.stopping = True
        for waiter in node.waiters:
            waiter.failed(node)
        for dependent in node.dependents:
            self.skip(dependent)

    def skip(self, node: _Node) -> None:
        """Mark a node and everything waiting on it as skipped."""
        stack = [node]
        while stack:
            current = stack.pop()
            if current.state is not _State.PENDING:
                continue
            current.state = _State.SKIPPED
            self.summary.skipped += 1
            self.emit(EventKind.TASK_SKIPPED, task=current.task)
            for waiter in current.waiters:
                waiter.failed(current)
            stack.extend(current.dependents)

    # -- running one task -----------------------------------------------------------
    async def run_node(self, node: _Node) -> None:
        task = node.task
        error: BaseException | None = None
        try:
            task._run_state = {"dynamic": []}
            self.emit(
                EventKind.TASK_STARTED, task=task, requires=tuple(d.id for d in node.deps)
            )
            result = await self.invoke(node)
            record = await self.settle(task, result)
            self.emit(EventKind.TASK_COMPLETED, task=task, record=record, dynamic=_dynamic(node))
        except Exception as exc:  # noqa: BLE001  # a task's failure is data for the build
            if hasattr(exc, "add_note") and not isinstance(exc, StardagError):
                exc.add_note(f"while running task {_name(node)}")
            error = exc
        finally:
            task._run_state = None
        self.queue.put_nowait((node, error))

    async def invoke(self, node: _Node) -> Any:
        """Run the task's `run()`/`run_aio()`, driving a generator through its yields."""
        task = node.task
        if _is_async(task):
            outcome = task.run_aio()
            if inspect.isasyncgen(outcome):
                return await self.drive_async(node, outcome)
            result = await outcome
        else:
            result = await self.call(task.run)
        if inspect.isgenerator(result):
            return await self.drive_sync(node, result)
        return result

    async def drive_sync(self, node: _Node, gen: Any) -> Any:
        sent: Any = None
        while True:
            step = await self.call(_step, gen, sent)
            if step[0]:
                return step[1]
            await self.wait_dynamic(node, step[1])

    async def drive_async(self, node: _Node, gen: Any) -> Any:
        try:
            yielded = await gen.__anext__()
            while True:
                await self.wait_dynamic(node, yielded)
                yielded = await gen.asend(None)
        except StopAsyncIteration:
            return None

    async def wait_dynamic(self, node: _Node, struct: Any) -> None:
        """Build the tasks a running task yielded, then return so it can resume."""
        tasks = flatten_task_struct(struct)
        assert node.task._run_state is not None
        node.task._run_state["dynamic"].extend(t.id for t in tasks)
        new = await self.discover(tasks)
        self.check_acyclic(new)
        _check_not_upstream(node, [self.nodes[t.id] for t in tasks])
        self.schedule(new)
        wanted = [self.nodes[t.id] for t in tasks]
        for dep in wanted:
            if dep.state in (_State.FAILED, _State.SKIPPED):
                raise TaskFailedError(f"dynamic dependency {_name(dep)} failed", task_id=dep.id)
        pending = {d.id for d in wanted if d.state not in _FINISHED}
        if not pending:
            return
        wait = _DynamicWait(pending)
        for dep in wanted:
            if dep.id in pending:
                dep.waiters.append(wait)
        # A suspended task gives its worker slot back while it waits.
        self.inflight -= 1
        self.suspended += 1
        self.queue.put_nowait((None, None))
        try:
            await wait.future
        finally:
            self.suspended -= 1
            self.inflight += 1

    async def settle(self, task: BaseTask, result: Any) -> Any:
        """Save a returned value, then make sure the task is complete."""
        state = task._run_state or {}
        if result is not None and isinstance(task, Task) and "record" not in state:
            await self.call(task._save, result)
        record = state.get("record")
        if record is None and not await self._complete(task):
            raise TaskFailedError(
                f"task {type(task).get_name()} ({task.id[:12]}) ran without error but is "
                "still not complete: run() must save its output (or return it)",
                task_id=task.id,
            )
        return record

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call a sync function: inline when sequential, else on the thread pool."""
        if self.pool is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


def _step(gen: Any, sent: Any) -> tuple[bool, Any]:
    try:
        return False, gen.send(sent)
    except StopIteration as stop:
        return True, stop.value


def _dynamic(node: _Node) -> tuple[str, ...]:
    state = node.task._run_state
    return tuple(state["dynamic"]) if state else ()


def _find_cycle(candidates: list[_Node]) -> list[_Node]:
    """A cycle among nodes that Kahn's algorithm could not order."""
    remaining = {n.id for n in candidates}
    start = candidates[0]
    path: list[_Node] = []
    position: dict[str, int] = {}
    node = start
    while node.id not in position:
        position[node.id] = len(path)
        path.append(node)
        node = next(d for d in node.deps if d.id in remaining)
    return [*path[position[node.id] :], node]


def _check_not_upstream(node: _Node, yielded: list[_Node]) -> None:
    """A yielded task that needs the yielding task would wait forever: a cycle."""
    stack = list(yielded)
    seen: set[str] = set()
    while stack:
        current = stack.pop()
        if current.id == node.id:
            raise DependencyCycleError(
                f"dependency cycle: {_name(node)} yielded a task that requires it",
                cycle=[node.id],
            )
        if current.id not in seen and current.state is _State.PENDING:
            seen.add(current.id)
            stack.extend(current.deps)


def _as_list(tasks: BaseTask | Iterable[BaseTask]) -> list[BaseTask]:
    return [tasks] if isinstance(tasks, BaseTask) else list(tasks)


def _listeners(listeners: Sequence[BuildListener] | None) -> list[BuildListener]:
    return list(listeners or ())


async def build_aio(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    max_workers: int | None = None,
    listeners: Sequence[BuildListener] | None = None,
) -> BuildSummary:
    """Build concurrently inside the running event loop."""
    engine = _Build(
        sequential=False, fail_mode=fail_mode, max_workers=max_workers, listeners=_listeners(listeners)
    )
    return await engine.run(_as_list(tasks))


async def build_sequential_aio(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    listeners: Sequence[BuildListener] | None = None,
) -> BuildSummary:
    """Build one task at a time, inside the running event loop."""
    engine = _Build(sequential=True, fail_mode=fail_mode, max_workers=1, listeners=_listeners(listeners))
    return await engine.run(_as_list(tasks))


def build(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    max_workers: int | None = None,
    listeners: Sequence[BuildListener] | None = None,
) -> BuildSummary:
    """Build every missing output of `tasks` and their upstream, concurrently."""
    return _run_sync(
        build_aio(tasks, fail_mode=fail_mode, max_workers=max_workers, listeners=listeners)
    )


def build_sequential(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    listeners: Sequence[BuildListener] | None = None,
) -> BuildSummary:
    """Build every missing output of `tasks` and their upstream, one task at a time."""
    return _run_sync(build_sequential_aio(tasks, fail_mode=fail_mode, listeners=listeners))


def _run_sync(coro: Any) -> BuildSummary:
    """Run a build coroutine; from inside a running loop (a notebook), on a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[no-any-return]  # coroutine of BuildSummary
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="stardag-build")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]  # set by target()
