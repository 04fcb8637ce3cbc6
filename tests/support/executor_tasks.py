"""Tasks that executor tests ship to other processes (importable there by module name)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import stardag as sd


@sd.task
def square(x: int) -> int:
    return x * x


class Total(sd.Task[int]):
    """The sum of its parts' outputs (static dependencies)."""

    parts: list[sd.TaskLoads[int]]

    def requires(self) -> Any:
        return self.parts

    def run(self) -> int:
        return sum(part.load() for part in self.parts)


@sd.task
def where_am_i(tag: str) -> int:
    return os.getpid()


@sd.task
async def async_double(x: int) -> int:
    return 2 * x


class Fanout(sd.Task[int]):
    """Yields squares of 0..n-1 (dynamic dependencies), then sums them."""

    n: int

    def run(self) -> Any:
        parts = yield [square(x=i) for i in range(self.n)]
        del parts
        return sum(square(x=i).load() for i in range(self.n))


@sd.task
def boom(message: str) -> int:
    raise ValueError(message)


@sd.task
def spin(seconds: float, tag: int) -> int:
    """Burn CPU for about `seconds` (pure Python: holds the interpreter lock)."""
    end = time.process_time() + seconds
    count = 0
    while time.process_time() < end:
        count += 1
    return tag


@sd.task
def interval(marks: str, tag: int, seconds: float) -> int:
    """Note (start, end) of this run in the folder `marks`; sleep `seconds` between."""
    start = time.time()
    time.sleep(seconds)
    Path(marks, f"{tag}-{os.getpid()}").write_text(f"{start} {time.time()}")
    return tag


@sd.task
def die_until(marks: str, deaths: int) -> int:
    """SIGKILL the worker process running it, until `deaths` runs have died; then 7.

    Each run first writes part of a blob into the store (a partial write that must
    never be published), then notes itself in the folder `marks`.
    """
    done = len(list(Path(marks).iterdir()))
    if done < deaths:
        store = die_until(marks=marks, deaths=deaths).output().store
        writer = store.writer()
        writer.write(b"partial output " * 4096)
        Path(marks, f"death-{done}").write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # the signal arrives; never reached
    return 7


@sd.task(executor="pool")
def hinted_pid(tag: str) -> int:
    """Asks a RoutedTaskExecutor for its "pool" executor."""
    return os.getpid()


@sd.task
def dask_key(tag: str) -> str:
    """The key of the Dask task running it."""
    import distributed

    return str(distributed.get_worker().get_current_task())


def shared_dag() -> list[sd.BaseTask]:
    """The DAG of the two-machines test: static and dynamic dependencies."""
    parts = [square(x=60 + i) for i in range(3)]
    return [Total(parts=parts), *parts, Fanout(n=2), square(x=0), square(x=1)]


def overlap(marks: Path) -> int:
    """The most `interval` runs noted in `marks` that were running at one moment."""
    edges: list[tuple[float, int]] = []
    for mark in marks.iterdir():
        start, end = map(float, mark.read_text().split())
        edges += [(start, 1), (end, -1)]
    running = most = 0
    for _, step in sorted(edges):  # at a tie an end sorts first: touching is not overlapping
        running += step
        most = max(most, running)
    return most
