"""Executors: the interface, the in-process default, the process pool, routing, limits."""

from __future__ import annotations

import dataclasses
import os
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import executor_tasks as t
import pytest

import stardag as sd
from stardag.build import (
    ConcurrencyConfig,
    FailMode,
    InProcessTaskExecutor,
    ProcessPoolTaskExecutor,
    RoutedTaskExecutor,
    RunPlace,
    TaskDone,
    TaskExecutor,
    TaskOutcome,
)
from stardag.maintenance._verify import verify


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolTaskExecutor]:
    """Two spawned worker processes, held open for this module's builds."""
    with ProcessPoolTaskExecutor(max_workers=2) as held:
        yield held


def _runs(task: sd.BaseTask) -> list[Any]:
    return sd.registry.history(task)


def _continue(tasks: Any, **kwargs: Any) -> sd.BuildSummary:
    """A FailMode.CONTINUE build's summary, whether it raises at the end or returns."""
    try:
        return sd.build(tasks, fail_mode=FailMode.CONTINUE, **kwargs)
    except sd.BuildFailedError as exc:
        return exc.summary


# -- the in-process default --------------------------------------------------------


def test_in_process_runs_are_recorded_where_they_ran() -> None:
    """Without an executor a run row names in_process and this host:pid."""
    task = t.where_am_i(tag="here")
    sd.build(task)
    assert task.load() == os.getpid()
    (run,) = _runs(task)
    assert run.executor == "in_process"
    assert run.executor_ref.endswith(f":{os.getpid()}")


def test_in_process_executor_given_explicitly_is_the_default_path() -> None:
    """task_executor=InProcessTaskExecutor() runs in this process, as the default does."""
    task = t.where_am_i(tag="explicit")
    sd.build(task, task_executor=InProcessTaskExecutor())
    assert task.load() == os.getpid()


# -- the process pool --------------------------------------------------------------------


def test_process_pool_runs_a_dag_in_other_processes(pool: ProcessPoolTaskExecutor) -> None:
    """Every task runs in a pool worker; the registry records each run and where."""
    parts = [t.square(x=i) for i in range(4)]
    total = t.Total(parts=parts)
    pid = t.where_am_i(tag="pool")
    summary = sd.build([total, pid], task_executor=pool)
    assert (summary.ran, total.load()) == (6, 0 + 1 + 4 + 9)
    assert pid.load() != os.getpid()
    for task in [total, pid, *parts]:
        (run,) = _runs(task)
        assert (run.outcome, run.executor) == ("computed", "process")
        assert not run.executor_ref.endswith(f":{os.getpid()}")
    assert _runs(pid)[0].executor_ref.endswith(f":{pid.load()}")


def test_process_pool_dynamic_dependencies(pool: ProcessPoolTaskExecutor) -> None:
    """A task that yields on a worker is re-run there once what it yielded is built."""
    fanout = t.Fanout(n=3)
    sd.build(fanout, task_executor=pool)
    assert fanout.load() == 0 + 1 + 4
    record = fanout.output().record()
    assert record is not None
    assert record.dynamic == [t.square(x=i).id for i in range(3)]


def test_process_pool_async_task(pool: ProcessPoolTaskExecutor) -> None:
    """An async task runs on the worker's own event loop."""
    task = t.async_double(x=21)
    sd.build(task, task_executor=pool)
    assert task.load() == 42
    assert _runs(task)[0].executor == "process"


def test_failure_on_a_worker_raises_its_exception_with_the_worker_traceback(
    pool: ProcessPoolTaskExecutor,
) -> None:
    """FAIL_FAST re-raises the task's own exception; its notes hold the worker's traceback."""
    with pytest.raises(ValueError, match="broken on purpose") as info:
        sd.build(t.boom(message="broken on purpose"), task_executor=pool)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "worker traceback (process" in notes
    assert 'executor_tasks.py", line' in notes and "in boom" in notes
    (run,) = _runs(t.boom(message="broken on purpose"))
    assert (run.outcome, run.executor, run.error_type) == ("failed", "process", "ValueError")
    assert "in boom" in run.traceback


def test_continue_on_a_worker_builds_every_other_branch(pool: ProcessPoolTaskExecutor) -> None:
    """CONTINUE: the failure is reported, what does not need it is built, its users skipped."""
    bad = t.Total(parts=[t.boom(message="no"), t.square(x=11)])
    good = t.Total(parts=[t.square(x=12)])
    summary = _continue([bad, good], task_executor=pool)
    assert (summary.failed, summary.skipped) == (1, 1)
    assert list(summary.failures) == [t.boom(message="no").id]
    assert good.load() == 144 and t.square(x=11).load() == 121


def test_unpicklable_task_fails_before_anything_runs(pool: ProcessPoolTaskExecutor) -> None:
    """A task that cannot be pickled is named before any task of the build runs."""

    class Local(sd.Task[int]):  # defined in a function: pickle cannot find it by name
        def run(self) -> int:
            return 1

    first = t.square(x=21)
    with pytest.raises(sd.TaskPicklingError, match="Local") as info:
        sd.build([first, Local()], task_executor=pool)
    assert info.value.task_id == Local().id
    assert "top level of an importable module" in str(info.value)
    assert not first.complete()


@pytest.fixture
def ghost_module() -> Iterator[types.ModuleType]:
    """A module of tasks that exists in this process only (workers cannot import it)."""
    module = types.ModuleType("ghost_tasks_for_workers")
    sys.modules[module.__name__] = module
    exec(  # a module that only this process has
        "import stardag as sd\n"
        "class Ghost(sd.Task[int]):\n"
        "    def run(self) -> int:\n"
        "        return 3\n",
        module.__dict__,
    )
    yield module
    del sys.modules[module.__name__]


def test_task_the_worker_cannot_import_fails_before_anything_runs(
    pool: ProcessPoolTaskExecutor, ghost_module: types.ModuleType
) -> None:
    """A module missing on the workers is named, with what to do, before anything runs."""
    ghost = ghost_module.Ghost()
    first = t.square(x=22)
    with pytest.raises(sd.WorkerImportError, match="ghost_tasks_for_workers") as info:
        sd.build([first, ghost], task_executor=pool)
    assert info.value.task_id == ghost.id
    assert "importable there" in str(info.value)
    assert not first.complete()


def test_killed_pool_worker_fails_the_task_and_the_next_build_completes_it(
    tmp_path: Path,
) -> None:
    """SIGKILL of the worker: WorkerLostError, no record, nothing damaged; a rebuild works."""
    (tmp_path / "marks").mkdir()
    task = t.die_until(marks=str(tmp_path / "marks"), deaths=1)
    with ProcessPoolTaskExecutor(max_workers=1) as own:
        with pytest.raises(sd.WorkerLostError, match="die_until") as info:
            sd.build(task, task_executor=own)
        assert info.value.task_id == task.id
        assert task.output().record() is None
        assert verify(task.output().store).ok
        sd.build(task, task_executor=own)  # the pool replaced its broken workers
    assert task.load() == 7


# -- the interface -----------------------------------------------------------------


class Recording(TaskExecutor):
    """An executor written against the interface alone: runs tasks on a thread."""

    name: ClassVar[str] = "recording"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.inner = InProcessTaskExecutor()

    async def setup(self) -> None:
        self.calls.append("setup")

    async def preflight(self, tasks: Sequence[sd.BaseTask]) -> None:
        self.calls.append(f"preflight {len(tasks)}")

    async def submit(self, task: sd.BaseTask) -> TaskOutcome:
        self.calls.append(f"submit {type(task).get_name()}")
        outcome = await self.inner.submit(task)
        return dataclasses.replace(outcome, where=RunPlace(self.name, "a test thread"))

    async def teardown(self) -> None:
        self.calls.append("teardown")


def test_custom_executor_sees_setup_preflight_submit_teardown() -> None:
    """The engine drives a custom executor through its small interface, in order."""
    executor = Recording()
    root = t.Total(parts=[t.square(x=31)])
    sd.build(root, task_executor=executor)
    assert root.load() == 961
    assert executor.calls == [
        "setup",
        "preflight 2",
        "submit square",
        "submit Total",
        "teardown",
    ]
    (run,) = _runs(root)
    assert (run.executor, run.executor_ref) == ("recording", "a test thread")


def test_custom_executor_returning_none_is_done() -> None:
    """An 0.28-style executor that returns None after running the task is accepted."""

    class Plain(TaskExecutor):
        async def submit(self, task: sd.BaseTask) -> Any:
            outcome = await InProcessTaskExecutor().submit(task)
            assert isinstance(outcome, TaskDone)
            return None

    task = t.square(x=32)
    sd.build(task, task_executor=Plain())
    assert task.load() == 1024


def test_custom_executor_returning_an_exception_fails_the_task() -> None:
    """An 0.28-style executor that returns the task's exception fails the task with it."""

    class Refuses(TaskExecutor):
        async def submit(self, task: sd.BaseTask) -> Any:
            return LookupError(f"no room for {task.id[:12]}")

    task = t.square(x=33)
    summary = sd.build(task, task_executor=Refuses(), fail_mode=sd.FailMode.CONTINUE)
    assert isinstance(summary.failures[task.id], LookupError)
    assert not task.complete()


def test_executor_written_for_0_28_runs_unchanged() -> None:
    """A 0.28.0 executor: TaskExecutorABC, submit returns None, the yielded tasks, or a
    TaskExecutionError; the engine builds what it yielded and submits the task again."""
    from stardag.build import TaskExecutionError, TaskExecutorABC, TaskFailed, TaskYielded

    class Old(TaskExecutorABC):
        def __init__(self) -> None:
            self.inner = InProcessTaskExecutor()

        async def setup(self) -> None:
            await self.inner.setup()

        async def teardown(self) -> None:
            await self.inner.teardown()

        async def submit(self, task: sd.BaseTask) -> Any:
            outcome = await self.inner.submit(task)
            if isinstance(outcome, TaskYielded):
                return list(outcome.tasks)
            if isinstance(outcome, TaskFailed):
                return TaskExecutionError(outcome.error, "in the old executor")
            return None

    grown = t.Fanout(n=3)
    sd.build(grown, task_executor=Old())
    assert grown.load() == 0 + 1 + 4
    broken = t.boom(message="old style")
    summary = sd.build(broken, task_executor=Old(), fail_mode=sd.FailMode.CONTINUE)
    error = summary.failures[broken.id]
    assert "old style" in str(error)
    assert any("in the old executor" in note for note in getattr(error, "__notes__", ()))


def test_router_sends_heavy_tasks_to_the_pool_and_light_ones_in_process(
    pool: ProcessPoolTaskExecutor,
) -> None:
    """RoutedTaskExecutor: the router picks per task; each run row says which."""
    routed = RoutedTaskExecutor(
        {"local": InProcessTaskExecutor(), "pool": pool},
        router=lambda task: "pool" if isinstance(task, t.Total) else "local",
    )
    parts = [t.where_am_i(tag="light")]
    root = t.Total(parts=parts)
    sd.build(root, task_executor=routed)
    assert parts[0].load() == os.getpid()
    assert _runs(root)[0].executor == "process"
    assert _runs(parts[0])[0].executor == "in_process"


def test_task_hint_routes_without_a_router(pool: ProcessPoolTaskExecutor) -> None:
    """`@sd.task(executor=...)` (or `__stardag_executor__`) picks the executor by name."""
    routed = RoutedTaskExecutor({"local": InProcessTaskExecutor(), "pool": pool})
    heavy = t.hinted_pid(tag="hint")
    light = t.where_am_i(tag="no hint")
    sd.build([heavy, light], task_executor=routed)
    assert heavy.load() != os.getpid()
    assert light.load() == os.getpid()
    assert _runs(heavy)[0].executor == "process"


def test_unknown_route_fails_before_anything_runs() -> None:
    """A router naming an executor that is not there is an error naming the task."""
    routed = RoutedTaskExecutor({"local": InProcessTaskExecutor()}, router=lambda task: "gpu")
    task = t.square(x=33)
    with pytest.raises(sd.ExecutorError, match="'gpu'") as info:
        sd.build(task, task_executor=routed)
    assert info.value.task_id == task.id
    assert not task.complete()


# -- concurrency limits ---------------------------------------------------------------


def _sleepers(marks: Path, count: int) -> list[sd.BaseTask]:
    return [t.interval(marks=str(marks), tag=i, seconds=0.3) for i in range(count)]


def test_named_limit_holds_in_process(tmp_path: Path) -> None:
    """A limit of 1 runs its tasks one at a time; without it they overlap."""
    free, limited = tmp_path / "free", tmp_path / "limited"
    free.mkdir()
    limited.mkdir()
    sd.build(_sleepers(free, 3), max_workers=3)
    assert t.overlap(free) > 1
    config = ConcurrencyConfig(limits={"db": 1}, key_selector=lambda task: "db")
    sd.build(_sleepers(limited, 3), max_workers=3, concurrency_config=config)
    assert t.overlap(limited) == 1


def test_overall_limit_holds_on_the_process_pool(
    tmp_path: Path, pool: ProcessPoolTaskExecutor
) -> None:
    """max_concurrent_tasks=1 holds on a pool of two workers, which overlap without it."""
    free, limited = tmp_path / "free", tmp_path / "limited"
    free.mkdir()
    limited.mkdir()
    sd.build(_sleepers(free, 4), task_executor=pool)
    assert t.overlap(free) == 2
    config = ConcurrencyConfig(max_concurrent_tasks=1)
    sd.build(_sleepers(limited, 4), task_executor=pool, concurrency_config=config)
    assert t.overlap(limited) == 1


def test_limit_does_not_deadlock_a_task_waiting_on_what_it_yielded() -> None:
    """A task gives its slot back while its dynamic dependencies run under the same limit."""
    config = ConcurrencyConfig(limits={"one": 1}, key_selector=lambda task: "one")
    fanout = t.Fanout(n=2)
    sd.build(fanout, concurrency_config=config)
    assert fanout.load() == 1


def test_unknown_limit_name_fails_before_anything_runs() -> None:
    """A key selector naming an undefined limit is an error naming the task."""
    config = ConcurrencyConfig(limits={"db": 1}, key_selector=lambda task: "dbb")
    task = t.square(x=34)
    with pytest.raises(sd.ConcurrencyLimitError, match="'dbb'") as info:
        sd.build(task, concurrency_config=config)
    assert info.value.task_id == task.id
    assert not task.complete()


def test_limit_below_one_is_refused() -> None:
    """A limit that could never admit a task is refused when configured."""
    with pytest.raises(sd.ConcurrencyLimitError, match="must be >= 1"):
        ConcurrencyConfig(limits={"db": 0})


def test_sync_run_default_process_runs_sync_tasks_in_a_pool() -> None:
    """sync_run_default="process": sync tasks in pool workers, async ones in process."""
    sync, other = t.where_am_i(tag="sync in a process"), t.async_double(x=8)
    sd.build([sync, other], sync_run_default="process")
    assert sync.load() != os.getpid()
    assert _runs(sync)[0].executor == "process"
    assert _runs(other)[0].executor == "in_process"


def test_sync_run_default_process_with_an_executor_is_refused() -> None:
    """Two answers to where tasks run are refused before anything runs."""
    with pytest.raises(sd.BuildOptionError, match="give one"):
        sd.build(t.square(x=35), sync_run_default="process", task_executor=InProcessTaskExecutor())
    assert not t.square(x=35).complete()
