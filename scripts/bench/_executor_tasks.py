"""Tasks of executors.py; a module of their own so that pool and Dask workers import them."""

from __future__ import annotations

import time
from typing import Any

import stardag as sd


def burn(seconds: float) -> int:
    """Pure-Python work for about `seconds` of CPU: it holds the interpreter lock throughout."""
    end = time.process_time() + seconds
    count = 0
    while time.process_time() < end:
        count += 1
    return count


@sd.task
def fit(seed: int, seconds: float, salt: str) -> int:
    """A CPU-bound task (a model fit, say)."""
    return burn(seconds) % 1000 + seed


class Reduce(sd.Task[int]):
    """The sum of the fits."""

    fits: list[sd.TaskLoads[int]]

    def requires(self) -> Any:
        return self.fits

    def run(self) -> int:
        return sum(task.load() for task in self.fits)


def fanout(n: int, seconds: float, salt: str) -> Reduce:
    """n fits of about `seconds` each, then a reduce."""
    return Reduce(fits=[fit(seed=i, seconds=seconds, salt=salt) for i in range(n)])


def trivial_body(i: int) -> int:
    """What a trivial task computes (the bare Dask baseline runs this)."""
    return i * i


@sd.task
def trivial(i: int, salt: str) -> int:
    """A task that does next to nothing: the cost measured is the machinery's."""
    return trivial_body(i)
