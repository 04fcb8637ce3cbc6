"""The build engine: Makefile semantics, concurrency, failures, dynamic deps, cycles."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest

import stardag as sd
from stardag.build import BuildExitStatus, FailMode

sd.auto_namespace(__name__)

RUNS: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset_runs() -> None:
    RUNS.clear()


@sd.task
def leaf(i: int) -> int:
    RUNS[f"leaf{i}"] += 1
    return i


@sd.task
def add(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    RUNS["add"] += 1
    return a + b


@sd.task
def step(prev: sd.Depends[int], i: int) -> int:
    RUNS["step"] += 1
    return prev + i


@sd.task
def boom(i: int) -> int:
    RUNS["boom"] += 1
    raise ValueError(f"boom {i}")


def chain(n: int) -> Any:
    task: Any = leaf(i=0)
    for k in range(1, n):
        task = step(prev=task, i=k)
    return task


class Recorder:
    """A build listener that keeps every event."""

    def __init__(self) -> None:
        self.events: list[sd.BuildEvent] = []
        self.lock = threading.Lock()

    def handle(self, event: sd.BuildEvent) -> None:
        with self.lock:
            self.events.append(event)

    def kinds(self) -> list[sd.EventKind]:
        return [e.kind for e in self.events]


ALL_BUILDS = [
    pytest.param(lambda t, **kw: sd.build(t, **kw), id="build"),
    pytest.param(lambda t, **kw: sd.build_sequential(t, **kw), id="build_sequential"),
    pytest.param(lambda t, **kw: asyncio.run(sd.build_aio(t, **kw)), id="build_aio"),
    pytest.param(
        lambda t, **kw: asyncio.run(sd.build_sequential_aio(t, **kw)), id="build_sequential_aio"
    ),
]


@pytest.mark.parametrize("run_build", ALL_BUILDS)
def test_diamond_runs_each_task_once(run_build: Any) -> None:
    """Every entry point runs a shared dependency once, bottom-up."""
    shared = leaf(i=1)
    root = add(a=add(a=shared, b=leaf(i=2)), b=add(a=shared, b=leaf(i=3)))
    summary = run_build(root)
    assert root.load() == 7
    assert RUNS == {"leaf1": 1, "leaf2": 1, "leaf3": 1, "add": 3}
    assert (summary.discovered, summary.ran, summary.already_complete) == (6, 6, 0)


def test_complete_task_upstream_is_not_walked() -> None:
    """A complete task is not run and its upstream is not even checked."""
    middle = add(a=leaf(i=1), b=leaf(i=2))
    sd.build(middle)
    RUNS.clear()
    summary = sd.build(step(prev=middle, i=10))
    assert RUNS == {"step": 1}
    assert (summary.discovered, summary.already_complete, summary.ran) == (2, 1, 1)


def test_rebuild_is_a_cache_hit() -> None:
    """A second build of a complete DAG runs nothing."""
    root = add(a=leaf(i=1), b=leaf(i=2))
    sd.build(root)
    RUNS.clear()
    summary = sd.build(root)
    assert not RUNS
    assert summary.already_complete == 1 and summary.ran == 0


def test_deep_chain_builds_without_recursion() -> None:
    """A 3,000-deep chain builds (no recursion in discovery or execution)."""
    root = chain(3000)
    sd.build(root)
    assert root.load() == sum(range(3000))


def test_sync_tasks_run_concurrently_on_threads() -> None:
    """Independent sync tasks run at the same time: both pass one barrier."""
    barrier = threading.Barrier(2, timeout=10)

    @sd.task
    def meet(i: int) -> int:
        barrier.wait()
        return i

    sd.build([meet(i=1), meet(i=2)], max_workers=2)
    assert meet(i=1).load() == 1


def test_the_default_pool_grows_for_tasks_that_wait_on_each_other() -> None:
    """The default pool starts with one thread and adds one while its threads are held by a
    task and others wait: two tasks that must meet at a barrier both run (one thread alone
    would hold the first at the barrier until it times out)."""
    barrier = threading.Barrier(2, timeout=30)
    threads: set[str] = set()

    @sd.task
    def meet_again(i: int) -> int:
        threads.add(threading.current_thread().name)
        barrier.wait()
        return i

    summary = sd.build([meet_again(i=1), meet_again(i=2)], fail_mode="continue")
    assert summary.ok, summary
    assert len(threads) == 2 and meet_again(i=2).load() == 2


def test_async_tasks_interleave_on_the_event_loop() -> None:
    """Two async tasks that each wait for the other finish: they share the loop."""
    events: dict[str, asyncio.Event] = {}

    @sd.task
    async def handshake(me: str, other: str) -> str:
        loop_events = events.setdefault(me, asyncio.Event())
        loop_events.set()
        while other not in events:
            await asyncio.sleep(0)
        await asyncio.wait_for(events[other].wait(), timeout=10)
        return me

    sd.build([handshake(me="a", other="b"), handshake(me="b", other="a")])
    assert handshake(me="a", other="b").load() == "a"


def test_failure_reraises_the_task_exception() -> None:
    """By default the failing task's own exception propagates, dependents do not run."""
    root = add(a=boom(i=1), b=leaf(i=2))
    with pytest.raises(ValueError, match="boom 1") as info:
        sd.build(root)
    assert "boom" in " ".join(getattr(info.value, "__notes__", []))
    assert RUNS["add"] == 0


def test_continue_builds_independent_branches() -> None:
    """FailMode.CONTINUE builds what does not depend on the failure, then reports it."""
    good = add(a=leaf(i=1), b=leaf(i=2))
    bad = add(a=boom(i=1), b=leaf(i=3))
    summary = sd.build([good, bad], fail_mode=FailMode.CONTINUE)
    assert summary.status is BuildExitStatus.FAILURE
    with pytest.raises(sd.BuildFailedError, match="boom"):
        summary.raise_on_failure()
    assert good.load() == 3
    assert leaf(i=3).load() == 3
    assert (summary.failed, summary.skipped) == (1, 1)
    assert list(summary.failures) == [boom(i=1).id]
    # Names are kept for the failed tasks alone (a 100,000-task build kept one per task).
    assert summary.names == {boom(i=1).id: "boom"}


def test_next_build_resumes_where_the_last_stopped() -> None:
    """After a failure, a rebuild runs only what is still missing."""
    flaky_state = {"fail": True}

    @sd.task
    def flaky(i: int) -> int:
        if flaky_state["fail"]:
            raise RuntimeError("not yet")
        return i

    root = add(a=flaky(i=1), b=leaf(i=2))
    failed = sd.build_sequential(root, fail_mode=FailMode.CONTINUE)
    assert failed.status is BuildExitStatus.FAILURE
    assert RUNS == {"leaf2": 1}
    RUNS.clear()
    flaky_state["fail"] = False
    summary = sd.build(root)
    assert root.load() == 3
    assert RUNS == {"add": 1}
    assert summary.already_complete == 1


class Loop(sd.Task[int]):
    """Requires its partner: a cycle through requires()."""

    name: str

    def requires(self) -> sd.TaskStruct:
        return Loop(name="b" if self.name == "a" else "a")

    def run(self) -> None:
        RUNS["loop"] += 1
        self.target().save(1)


def test_cycle_is_an_error_before_anything_runs() -> None:
    """A dependency cycle is reported, naming the tasks, and nothing runs."""
    with pytest.raises(sd.DependencyCycleError, match="Loop") as info:
        sd.build([leaf(i=5), Loop(name="a")])
    assert len(info.value.cycle) == 3
    assert not RUNS


class Fanout(sd.Task[int]):
    """Yields a task computed from its parameter, then sums it (dynamic deps)."""

    n: int

    def run(self) -> Any:
        parts = [leaf(i=k) for k in range(self.n)]
        yield parts
        total = sum(p.load() for p in parts)
        yield step(prev=parts[0], i=total)
        self.target().save(total)


class AsyncFanout(sd.Task[int]):
    n: int

    async def run_aio(self) -> Any:
        parts = [leaf(i=k) for k in range(self.n)]
        yield parts
        self.target().save(sum(p.load() for p in parts))


@pytest.mark.parametrize("run_build", ALL_BUILDS)
def test_dynamic_dependencies_are_built_before_resuming(run_build: Any) -> None:
    """Tasks yielded from run() are complete when it resumes."""
    task = Fanout(n=4)
    run_build(task)
    assert task.load() == 6
    assert RUNS["leaf3"] == 1 and RUNS["step"] == 1


@pytest.mark.parametrize("run_build", ALL_BUILDS)
def test_async_generator_dynamic_dependencies(run_build: Any) -> None:
    """An async generator run_aio() may yield dependencies too."""
    task = AsyncFanout(n=3)
    run_build(task)
    assert task.load() == 3


class SelfYield(sd.Task[int]):
    def run(self) -> Any:
        yield Needs(target_name="self")
        self.target().save(1)


class Needs(sd.Task[int]):
    target_name: str

    def requires(self) -> sd.TaskStruct:
        return SelfYield()

    def run(self) -> None:
        self.target().save(1)


def test_dynamic_cycle_is_an_error() -> None:
    """Yielding a task that requires the yielder is a cycle, not a hang."""
    with pytest.raises(sd.DependencyCycleError, match="yielded"):
        sd.build(SelfYield())


def test_build_emits_events() -> None:
    """A build tells its listeners what happened, in order, per task."""
    recorder = Recorder()
    root = add(a=leaf(i=1), b=leaf(i=2))
    sd.build(root, listeners=[recorder])
    kinds = recorder.kinds()
    assert kinds[0] is sd.EventKind.BUILD_STARTED and kinds[-1] is sd.EventKind.BUILD_ENDED
    assert kinds.count(sd.EventKind.TASK_STARTED) == 3
    assert kinds.count(sd.EventKind.TASK_COMPLETED) == 3
    done = [e for e in recorder.events if e.kind is sd.EventKind.TASK_COMPLETED]
    assert done[-1].task == root and done[-1].record is not None
    started = {e.task.id: e.requires for e in recorder.events if e.task and e.requires}
    assert set(started[root.id]) == {leaf(i=1).id, leaf(i=2).id}
    recorder.events.clear()
    sd.build(root, listeners=[recorder])
    assert recorder.kinds().count(sd.EventKind.TASK_CACHED) == 1


def test_failure_and_skip_events() -> None:
    """Failed and skipped tasks are reported as events."""
    recorder = Recorder()
    summary = sd.build(step(prev=boom(i=2), i=1), listeners=[recorder], fail_mode="continue")
    assert not summary.ok
    kinds = recorder.kinds()
    assert sd.EventKind.TASK_FAILED in kinds and sd.EventKind.TASK_SKIPPED in kinds
    failed = next(e for e in recorder.events if e.kind is sd.EventKind.TASK_FAILED)
    assert isinstance(failed.error, ValueError)


def test_returned_value_is_saved() -> None:
    """A class task whose run() returns its value gets it saved."""

    class Returns(sd.Task[str]):
        def run(self) -> str:
            return "value"

    sd.build(Returns())
    assert Returns().load() == "value"


def test_run_that_saves_nothing_is_a_failure() -> None:
    """A task that finishes without producing its output fails clearly."""

    class Forgetful(sd.Task[int]):
        def run(self) -> None:
            pass

    with pytest.raises(sd.TaskFailedError, match="still not complete"):
        sd.build(Forgetful())


def test_build_inside_a_running_loop() -> None:
    """`sd.build` works where an event loop already runs (as in a notebook)."""

    async def inside() -> sd.BuildSummary:
        return sd.build(leaf(i=9))

    assert asyncio.run(inside()).ran == 1
    assert leaf(i=9).load() == 9


def test_build_rejects_non_tasks() -> None:
    """Passing something that is not a task is a TypeError naming it."""
    with pytest.raises(TypeError, match="expected a task"):
        sd.build([leaf(i=1), 42])  # type: ignore[list-item]  # the point of the test


def test_base_task_with_its_own_complete() -> None:
    """`sd.BaseTask` subclasses decide completeness themselves."""
    done: set[str] = set()

    class Marker(sd.BaseTask):
        key: str

        def complete(self) -> bool:
            return self.key in done

        def run(self) -> None:
            done.add(self.key)

    summary = sd.build([Marker(key="a"), Marker(key="b")])
    assert done == {"a", "b"} and summary.ran == 2
    assert sd.build(Marker(key="a")).already_complete == 1
