"""Task code that used to hang or muddle a build, on every entry point.

A task raising SystemExit or GeneratorExit fails that task; KeyboardInterrupt
stops the build as Ctrl-C does; tasks that yield each other are a cycle; and a
failed task's traceback starts with its own error. Each build runs on a thread
with a deadline, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

import stardag as sd

sd.auto_namespace(__name__)

DEADLINE = 60.0

ALL_BUILDS = [
    pytest.param(lambda t, **kw: sd.build(t, **kw), id="build"),
    pytest.param(lambda t, **kw: sd.build_sequential(t, **kw), id="build_sequential"),
    pytest.param(lambda t, **kw: asyncio.run(sd.build_aio(t, **kw)), id="build_aio"),
    pytest.param(
        lambda t, **kw: asyncio.run(sd.build_sequential_aio(t, **kw)), id="build_sequential_aio"
    ),
]


def within_deadline(work: Callable[[], Any]) -> BaseException | None:
    """Run `work` on a thread; what it raised (None if nothing); fail if it hangs."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001  # handed to the test
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    if thread.is_alive():
        pytest.fail(f"the build hung for {DEADLINE:.0f} s")
    return raised[0] if raised else None


EXITS: dict[str, type[BaseException]] = {
    "SystemExit": SystemExit,
    "GeneratorExit": GeneratorExit,
    "KeyboardInterrupt": KeyboardInterrupt,
}


@sd.task
def exits(kind: str) -> int:
    raise EXITS[kind]("from the task")


@sd.task
def after(value: sd.Depends[int]) -> int:
    return value


@sd.task
def fine(i: int) -> int:
    return i


@pytest.mark.parametrize("kind", ["SystemExit", "GeneratorExit"])
@pytest.mark.parametrize("run_build", ALL_BUILDS)
def test_exit_from_a_task_fails_that_task(run_build: Any, kind: str) -> None:
    """SystemExit or GeneratorExit in run() fails the task clearly; nothing hangs or exits."""
    root = after(value=exits(kind=kind))
    error = within_deadline(lambda: run_build(root))
    assert isinstance(error, sd.TaskFailedError), repr(error)
    assert error.task_id == exits(kind=kind).id
    assert kind in str(error) and "exits" in str(error)
    assert isinstance(error.__cause__, EXITS[kind])
    (build,) = sd.registry.builds()
    outcomes = {run.name: run.outcome for run in sd.registry.build(build.id).runs}
    assert outcomes == {"exits": "failed", "after": "skipped"}


@pytest.mark.parametrize("run_build", ALL_BUILDS)
def test_keyboard_interrupt_from_a_task_stops_the_build(run_build: Any) -> None:
    """KeyboardInterrupt in run() stops the build like Ctrl-C: raised, recorded interrupted."""
    root = after(value=exits(kind="KeyboardInterrupt"))
    error = within_deadline(lambda: run_build(root))
    assert isinstance(error, KeyboardInterrupt), repr(error)
    assert error.__context__ is None and error.__cause__ is None
    (build,) = sd.registry.builds()
    assert build.status == "interrupted"
    outcomes = {run.name: run.outcome for run in sd.registry.build(build.id).runs}
    assert outcomes == {"exits": "interrupted", "after": "interrupted"}


class Ring(sd.Task[int]):
    """Yields the next task of a ring of three: a cycle only a running build can see."""

    n: int

    def run(self) -> Any:
        yield Ring(n=(self.n + 1) % 3)
        return self.n


class AsyncRing(sd.Task[int]):
    n: int

    async def run_aio(self) -> Any:
        yield AsyncRing(n=(self.n + 1) % 3)
        self.target().save(self.n)


@pytest.mark.parametrize("ring", [Ring, AsyncRing])
@pytest.mark.parametrize("run_build", ALL_BUILDS)
def test_tasks_yielding_each_other_are_a_cycle(run_build: Any, ring: Any) -> None:
    """A cycle through several tasks' yields is a DependencyCycleError, not a hang."""
    error = within_deadline(lambda: run_build(ring(n=0)))
    assert isinstance(error, sd.DependencyCycleError), repr(error)
    assert len(error.cycle) == 3
    assert set(error.cycle) == {ring(n=k).id for k in range(3)}


@sd.task
def boom(i: int) -> int:
    raise ValueError(f"boom {i}")


class FailsAfterYield(sd.Task[int]):
    def run(self) -> Any:
        yield fine(i=1)
        raise ValueError("after the yield")


@pytest.mark.parametrize("task", [boom(i=1), FailsAfterYield()], ids=["plain", "after-yield"])
@pytest.mark.parametrize("run_build", ALL_BUILDS)
def test_failed_task_traceback_starts_with_its_own_error(run_build: Any, task: Any) -> None:
    """The task's error chains to nothing of the engine's, raised or recorded."""
    error = within_deadline(lambda: run_build(task))
    assert isinstance(error, ValueError), repr(error)
    assert error.__context__ is None and error.__cause__ is None
    (build,) = sd.registry.builds()
    (run,) = [run for run in sd.registry.build(build.id).runs if run.outcome == "failed"]
    assert run.traceback is not None
    assert "During handling" not in run.traceback and "RuntimeError" not in run.traceback
    assert run.traceback.startswith("Traceback (most recent call last):")
