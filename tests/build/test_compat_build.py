"""The build result and run policies of the released stardag 0.28 (issue 12).

`BuildSummary.status`/`task_count`/`error`/`failed_task`/`raise_on_failure()`,
`raise_on_failure=`, `FailMode.CONTINUE` returning, `dual_run_default` /
`sync_run_default`, `get_current_build_id()`, and a cycle that is a `RuntimeError`.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import stardag as sd
from stardag.build import (
    BuildContext,
    BuildExitStatus,
    BuildFailed,
    FailMode,
    TaskCount,
    get_current_build_context,
    get_current_build_id,
)

sd.auto_namespace(__name__)


@sd.task
def good(i: int) -> int:
    return i


@sd.task
def bad(i: int) -> int:
    raise ValueError(f"bad {i}")


@sd.task
def plus(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    return a + b


def test_summary_has_status_and_one_set_of_counts() -> None:
    """`task_count` and our own count attributes are the same numbers."""
    sd.build(good(i=1))
    summary = sd.build(plus(a=good(i=1), b=good(i=2)))
    assert summary.status is BuildExitStatus.SUCCESS and summary.status == "success"
    assert summary.task_count == TaskCount(
        discovered=3, previously_completed=1, succeeded=2, failed=0, cancelled=0, skipped=0
    )
    assert (summary.discovered, summary.already_complete, summary.ran) == (3, 1, 2)
    summary.ran += 1  # one set of numbers: writing ours changes theirs
    assert summary.task_count.succeeded == 3 and summary.task_count.pending == -1
    assert summary.error is None and summary.failed_task is None
    summary.raise_on_failure()  # success: nothing to raise


def test_continue_returns_a_failure_summary() -> None:
    """FailMode.CONTINUE builds what it can and returns; it raises only when asked."""
    root = plus(a=bad(i=1), b=good(i=3))
    summary = sd.build([root, good(i=4)], fail_mode=FailMode.CONTINUE)
    assert summary.status is BuildExitStatus.FAILURE and not summary.ok
    assert summary.task_count.failed == 1 and summary.task_count.skipped == 1
    assert summary.failed_task == bad(i=1)
    assert isinstance(summary.error, ValueError) and "bad 1" in str(summary.error)
    assert good(i=4).load() == 4 and good(i=3).load() == 3
    with pytest.raises(BuildFailed, match="bad 1") as info:
        summary.raise_on_failure()
    assert info.value.summary is summary and isinstance(info.value, sd.BuildFailedError)


def test_continue_returns_even_with_raise_on_failure_true() -> None:
    """As in 0.28, raise_on_failure concerns FAIL_FAST; CONTINUE always returns."""
    summary = sd.build_sequential(
        bad(i=2), fail_mode=FailMode.CONTINUE, raise_on_failure=True, registry=None
    )
    assert summary.status is BuildExitStatus.FAILURE


@pytest.mark.parametrize(
    "entry", ["build", "build_sequential", "build_aio", "build_sequential_aio"]
)
def test_fail_fast_raise_on_failure_false_returns_the_summary(entry: str) -> None:
    """FAIL_FAST re-raises the task's own exception unless raise_on_failure=False."""
    function = getattr(sd, entry)

    def run(**kwargs: Any) -> Any:
        result = function(plus(a=bad(i=5), b=good(i=6)), **kwargs)
        return asyncio.run(result) if entry.endswith("_aio") else result

    with pytest.raises(ValueError, match="bad 5"):
        run()
    summary = run(raise_on_failure=False)
    assert summary.status is BuildExitStatus.FAILURE
    assert summary.failed_task == bad(i=5) and summary.task_count.failed == 1


class Dual(sd.Task[str]):
    """A task with both run() and run_aio(): which one runs is the build's choice."""

    tag: str

    def run(self) -> str:
        return "sync"

    async def run_aio(self) -> str:
        return "async"


def test_dual_tasks_follow_dual_run_default() -> None:
    """0.28's defaults: a sequential build runs run(); concurrent ones run run_aio()."""
    sd.build_sequential(Dual(tag="a"))
    assert Dual(tag="a").load() == "sync"
    sd.build(Dual(tag="b"))
    assert Dual(tag="b").load() == "async"
    asyncio.run(sd.build_sequential_aio(Dual(tag="c")))
    assert Dual(tag="c").load() == "async"
    sd.build_sequential(Dual(tag="d"), dual_run_default="async")
    assert Dual(tag="d").load() == "async"
    sd.build(Dual(tag="e"), dual_run_default="sync")
    assert Dual(tag="e").load() == "sync"


THREADS: dict[str, str] = {}


class WhereSync(sd.Task[int]):
    """Notes the thread it ran on."""

    key: str

    def run(self) -> int:
        THREADS[self.key] = threading.current_thread().name
        return 1


@pytest.mark.parametrize(
    ("entry", "mode", "on_caller"),
    [
        ("build", "thread", False),
        ("build", "blocking", True),
        ("build_sequential", "blocking", True),
        ("build_sequential", "thread", False),
    ],
)
def test_sync_run_default_picks_the_thread(entry: str, mode: str, on_caller: bool) -> None:
    """ "thread" runs sync tasks off the event loop's thread, "blocking" on it."""
    key = f"{entry}-{mode}"
    getattr(sd, entry)(WhereSync(key=key), sync_run_default=mode)
    assert (THREADS[key] == threading.current_thread().name) is on_caller


def test_bad_run_defaults_are_refused() -> None:
    """A misspelt policy is an error before anything runs."""
    with pytest.raises(sd.BuildOptionError, match="dual_run_default"):
        sd.build(good(i=7), dual_run_default="both")  # type: ignore[arg-type]
    with pytest.raises(sd.BuildOptionError, match="sync_run_default"):
        sd.build(good(i=7), sync_run_default="fork")  # type: ignore[arg-type]
    assert not good(i=7).complete()


SEEN: dict[str, Any] = {}


class Sees(sd.Task[str]):
    """Records the build context it runs in."""

    key: str

    def run(self) -> str:
        SEEN[self.key] = get_current_build_context()
        return get_current_build_id() or ""


class SeesAsync(sd.Task[str]):
    """The same, on the event loop."""

    key: str

    async def run_aio(self) -> str:
        SEEN[self.key] = get_current_build_context()
        return get_current_build_id() or ""


def test_current_build_id_inside_tasks() -> None:
    """Inside a running task (thread or loop) the id is the build's; outside, None."""
    assert get_current_build_id() is None and get_current_build_context() is None
    summary = sd.build([Sees(key="t"), SeesAsync(key="a")])
    assert Sees(key="t").load() == summary.build_id == SeesAsync(key="a").load()
    assert SEEN["t"] == BuildContext(build_id=summary.build_id)
    sequential = sd.build_sequential(Sees(key="s"))
    assert Sees(key="s").load() == sequential.build_id != summary.build_id
    assert get_current_build_id() is None


class Loop(sd.Task[int]):
    """Requires its partner: a cycle."""

    name: str

    def requires(self) -> sd.TaskStruct:
        return Loop(name="b" if self.name == "a" else "a")

    def run(self) -> int:
        return 1


def test_a_cycle_is_also_a_runtime_error() -> None:
    """Code that caught the released stardag's RuntimeError still catches the cycle."""
    with pytest.raises(RuntimeError, match="dependency cycle") as info:
        sd.build(Loop(name="a"))
    assert isinstance(info.value, sd.DependencyCycleError)
