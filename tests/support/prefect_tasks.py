"""Tasks the Prefect tests build (a module of their own, so any task runner can import it)."""

from __future__ import annotations

import threading
from pathlib import Path

import stardag as sd

sd.namespace("prefect_tests", __name__)


@sd.task
def numbers(n: int) -> list[int]:
    return list(range(n))


@sd.task
def total(a: sd.Depends[list[int]], b: sd.Depends[list[int]]) -> int:
    return sum(a) + sum(b)


@sd.task
def explode(values: sd.Depends[list[int]]) -> int:
    raise ValueError(f"cannot add up {len(values)} values today")


class Flaky(sd.Task[int]):
    """Counts its runs in `log`; the first run fails, after (`late`) or before saving."""

    log: str
    late: bool

    def run(self) -> None:
        path = Path(self.log)
        with path.open("a") as fh:
            fh.write("run\n")
        first = path.read_text().count("run") == 1
        if first and not self.late:
            raise RuntimeError("failed before writing its output")
        self._save(42)
        if first:
            raise RuntimeError("failed after writing its output")


class Meter:
    """How many tasks run at once, at most; `barrier` lets `pair` tasks meet."""

    def __init__(self, pair: int) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.barrier = threading.Barrier(pair, timeout=60)


METER = Meter(2)


@sd.task
def metered(i: int) -> int:
    with METER.lock:
        METER.now += 1
        METER.most = max(METER.most, METER.now)
    try:
        METER.barrier.wait()  # only passes when two tasks run at once
    finally:
        with METER.lock:
            METER.now -= 1
    return i
