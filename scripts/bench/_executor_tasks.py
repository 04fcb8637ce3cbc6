"""Tasks of executors.py; a module of their own so that pool and Dask workers import them."""

from __future__ import annotations

import time
from typing import Any

import stardag as sd


def burn(loops: int) -> int:
    """Pure-Python work: `loops` rounds that hold the interpreter lock throughout.

    A fixed amount of work, not a span of CPU time: `time.process_time()` counts every
    thread of the process, so in-process threads sharing one lock would each stop early.
    """
    count = 0
    for i in range(loops):
        count += i & 7
    return count


def loops_for(seconds: float) -> int:
    """How many `burn` rounds take about `seconds` on one core here (best of five)."""
    probe = 200_000
    best = min(_timed_burn(probe) for _ in range(5))
    return max(1, round(probe * seconds / best))


def _timed_burn(loops: int) -> float:
    start = time.perf_counter()
    burn(loops)
    return time.perf_counter() - start


@sd.task
def fit(seed: int, loops: int, salt: str) -> int:
    """A CPU-bound task (a model fit, say)."""
    return burn(loops) % 1000 + seed


class Reduce(sd.Task[int]):
    """The sum of the fits."""

    fits: list[sd.TaskLoads[int]]

    def requires(self) -> Any:
        return self.fits

    def run(self) -> int:
        return sum(task.load() for task in self.fits)


def fanout(n: int, loops: int, salt: str) -> Reduce:
    """n fits of `loops` rounds each, then a reduce."""
    return Reduce(fits=[fit(seed=i, loops=loops, salt=salt) for i in range(n)])


def trivial_body(i: int) -> int:
    """What a trivial task computes (the bare Dask baseline runs this)."""
    return i * i


@sd.task
def trivial(i: int, salt: str) -> int:
    """A task that does next to nothing: the cost measured is the machinery's."""
    return trivial_body(i)


def stored_body(i: int, salt: str) -> int:
    """`trivial_body`, and its value saved to the store as the task `trivial` saves it.

    The bare Dask baseline that does the same work as a task: compute, then store
    the output content-addressed (blob, then record) where the task's output goes.
    """
    value = trivial_body(i)
    trivial(i=i, salt=salt)._save(value)
    return value
