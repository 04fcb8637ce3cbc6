"""Ctrl-C: a real SIGINT to a real build process, through the API and the CLI.

One SIGINT stops starting tasks and says which running tasks it waits for; a
second abandons them. The registry records what completed as computed and the
rest as interrupted; the store holds a record for exactly what completed.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest

import stardag as sd

SUPPORT = Path(__file__).parent.parent / "support"
ENTRIES = ["build", "build_sequential", "build_aio", "build_sequential_aio"]
# `sd.build` called where a loop runs (a notebook): the build runs on a thread of its own.
IN_LOOP = "build_in_loop"
CLEAN = "KeyboardInterrupt context=None cause=None"


def _default_sigint() -> None:
    """In the child before it starts: SIGINT as a terminal gives it. A suite run in the
    background by a non-interactive shell inherits SIGINT ignored, and a Python started
    that way installs no handler: the tests' real SIGINT would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child:
    """A build in another process, its output read line by line as it comes."""

    def __init__(self, args: list[str], home: Path, release: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SUPPORT), *sys.path]),
            "STARDAG_HOME": str(home),
            "INTERRUPT_RELEASE": str(release),
        }
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            preexec_fn=_default_sigint,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        with stream:
            for line in stream:
                self.lines.put(line)

    def wait_for(self, text: str, count: int = 1) -> None:
        """Block until `text` has appeared in `count` lines of output (or fail)."""
        while sum(line.count(text) for line in self.seen) < count:
            try:
                line = self.lines.get(timeout=60)
            except queue.Empty:
                self.proc.kill()  # a stuck child must not outlive its test
                pytest.fail(f"no {text!r} after 60 s; output so far:\n{''.join(self.seen)}")
            self.seen.append(line)

    def finish(self) -> str:
        """Wait for the exit; all the output."""
        self.proc.wait(timeout=60)
        for reader in self.readers:
            reader.join(timeout=60)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "".join(self.seen)


def _start(args: list[str], tmp_path: Path, stardag_home: Path) -> tuple[Child, Path, int]:
    release = tmp_path / "release"
    child = Child(args, stardag_home, release)
    running = 1 if "sequential" in " ".join(args) else 2
    child.wait_for("started", running)
    return child, release, running


def _registry_outcomes() -> tuple[str, list[str]]:
    (build,) = sd.registry.builds()
    return build.status, sorted(run.outcome for run in sd.registry.build(build.id).runs)


def _records(home: Path) -> int:
    return len(list((home / "store" / "records").glob("*/*")))


@pytest.mark.parametrize("entry", [*ENTRIES, IN_LOOP])
def test_one_sigint_finishes_running_tasks_and_starts_no_more(
    entry: str, tmp_path: Path, stardag_home: Path
) -> None:
    """The first Ctrl-C names the running tasks, lets them finish, then raises cleanly."""
    child, release, running = _start(["-m", "interrupt_tasks", entry], tmp_path, stardag_home)
    child.proc.send_signal(signal.SIGINT)
    child.wait_for(f"waiting for {running} running task")
    assert "blocked (" in child.seen[-1]  # the running tasks are named
    release.touch()
    output = child.finish()
    assert child.proc.returncode == 130, output
    assert CLEAN in output
    assert "CancelledError" not in output and "no running event loop" not in output
    status, outcomes = _registry_outcomes()
    assert status == "interrupted"
    assert outcomes == ["computed"] * running + ["interrupted"] * (6 - running)
    assert _records(stardag_home) == running


@pytest.mark.parametrize("entry", ENTRIES)
def test_second_sigint_abandons_running_tasks(
    entry: str, tmp_path: Path, stardag_home: Path
) -> None:
    """A second Ctrl-C ends the build now; tasks finishing after that store nothing."""
    child, _release, running = _start(["-m", "interrupt_tasks", entry], tmp_path, stardag_home)
    child.proc.send_signal(signal.SIGINT)
    child.wait_for(f"waiting for {running} running task")
    child.proc.send_signal(signal.SIGINT)
    output = child.finish()
    assert child.proc.returncode == 130, output
    assert f"abandoning {running} running task" in output
    assert CLEAN in output
    status, outcomes = _registry_outcomes()
    assert status == "interrupted"
    assert outcomes == ["interrupted"] * 6
    assert _records(stardag_home) == 0  # the abandoned tasks ran to the end after it


@pytest.mark.parametrize("entry", [*ENTRIES, IN_LOOP])
def test_sigint_caught_on_another_thread_reaches_the_build(
    entry: str, tmp_path: Path, stardag_home: Path
) -> None:
    """A Ctrl-C the kernel hands to a thread other than the main one (it may pick any)
    is acted on at once: the main thread may be asleep waiting for the running tasks."""
    args = ["-m", "interrupt_tasks", entry, "offmain"]
    child, release, running = _start(args, tmp_path, stardag_home)
    child.wait_for(f"waiting for {running} running task")
    release.touch()
    output = child.finish()
    assert child.proc.returncode == 130, output
    assert CLEAN in output
    status, outcomes = _registry_outcomes()
    assert status == "interrupted"
    assert outcomes == ["computed"] * running + ["interrupted"] * (6 - running)


@pytest.mark.parametrize("entry", ENTRIES)
def test_sigint_while_the_build_starts_starts_no_task_and_raises_cleanly(
    entry: str, tmp_path: Path, stardag_home: Path
) -> None:
    """A Ctrl-C before the engine runs (the registry just opened): no task starts, and the
    KeyboardInterrupt chains to nothing (asyncio's own handler would chain a CancelledError)."""
    child = Child(["-m", "interrupt_tasks", entry, "early"], stardag_home, tmp_path / "release")
    output = child.finish()
    assert child.proc.returncode == 130, output
    assert CLEAN in output, output
    assert "started" not in output and "CancelledError" not in output
    status, outcomes = _registry_outcomes()
    assert status == "interrupted" and set(outcomes) <= {"interrupted"}
    assert _records(stardag_home) == 0


def test_cli_build_stops_on_sigint(tmp_path: Path, stardag_home: Path) -> None:
    """`stardag build`: one Ctrl-C waits for the running tasks, then exits 130 in one line."""
    args = ["-m", "stardag", "build", "interrupt_tasks:TASKS", "--workers", "2"]
    child, release, _running = _start(args, tmp_path, stardag_home)
    child.proc.send_signal(signal.SIGINT)
    child.wait_for("waiting for 2 running tasks")
    release.touch()
    output = child.finish()
    assert child.proc.returncode == 130, output
    assert "Traceback" not in output
    assert "build interrupted" in output
    status, outcomes = _registry_outcomes()
    assert (status, outcomes) == ("interrupted", ["computed"] * 2 + ["interrupted"] * 4)


def test_cli_build_second_sigint_abandons(tmp_path: Path, stardag_home: Path) -> None:
    """`stardag build`: a second Ctrl-C abandons the running tasks and exits 130."""
    args = ["-m", "stardag", "build", "interrupt_tasks:TASKS", "--workers", "2"]
    child, _release, _running = _start(args, tmp_path, stardag_home)
    child.proc.send_signal(signal.SIGINT)
    child.wait_for("waiting for 2 running tasks")
    child.proc.send_signal(signal.SIGINT)
    output = child.finish()
    assert child.proc.returncode == 130, output
    assert "Traceback" not in output and "abandoning 2 running tasks" in output
    assert _registry_outcomes() == ("interrupted", ["interrupted"] * 6)


HELD = threading.Event()
STARTED = threading.Event()


@sd.task
def held(i: int) -> int:
    STARTED.set()
    HELD.wait(60)
    return i


def test_cancelling_build_aio_abandons_the_build(stardag_home: Path) -> None:
    """A cancelled `build_aio` raises CancelledError at once; the registry says interrupted."""
    tasks = [held(i=i) for i in range(3)]

    async def cancel_it() -> None:
        build = asyncio.ensure_future(sd.build_aio(tasks, max_workers=1))
        await asyncio.to_thread(STARTED.wait, 60)
        build.cancel()
        with pytest.raises(asyncio.CancelledError):
            await build

    try:
        asyncio.run(cancel_it())
    finally:
        HELD.set()
        for thread in threading.enumerate():
            if thread.name.startswith("stardag-"):
                thread.join(60)
    assert _registry_outcomes() == ("interrupted", ["interrupted"] * 3)
    assert _records(stardag_home) == 0  # the abandoned task finished after: nothing stored
