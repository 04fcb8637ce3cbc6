"""Tasks the CLI, gc, verify and audit tests build, in-process and from subprocesses.

Imported as the top-level module `cli_tasks` (the tests directory on the path, or
the current directory of a `stardag` subprocess), so its namespace is the same
in both.
"""

from __future__ import annotations

import os
import random
import time

import stardag as sd

sd.auto_namespace(__name__)


@sd.task
def numbers(limit: int) -> list[int]:
    """Big enough (over the inline limit) to live in a blob of its own."""
    return list(range(limit))


@sd.task
def total(values: sd.Depends[list[int]]) -> int:
    return sum(values)


@sd.task
def scaled(values: sd.Depends[list[int]], factor: int) -> list[int]:
    return [v * factor for v in values]


@sd.task
def report(small: sd.Depends[int], big: sd.Depends[list[int]]) -> str:
    return f"total {small}, {len(big)} scaled values\n" + "x" * 5000


@sd.task
def noise(seed_hint: int) -> float:
    """Not deterministic: a fresh random number every run."""
    return random.random() + seed_hint


@sd.task
def broken(values: sd.Depends[list[int]]) -> int:
    raise ValueError("this task always fails")


@sd.task
def from_env(name: str) -> str:
    """Records the environment variable it saw (used to tell builds apart)."""
    return os.environ.get(name, "")


@sd.task
def checkpoint(steps: int) -> sd.Directory:
    """A directory output: each file a blob, the manifest the task's output."""
    out = sd.Directory.staging()
    (out.path / "weights.bin").write_bytes(bytes(range(256)) * 40 * steps)
    (out.path / "config.json").write_text(f'{{"steps": {steps}}}')
    return out


@sd.task(target_root_key="elsewhere")
def kept_elsewhere(limit: int) -> list[int]:
    """Stored under the root key "elsewhere", which tests leave unconfigured."""
    return list(range(limit))


@sd.task
def sleepy(seconds: float) -> float:
    """Takes its time: a build to kill while it runs."""
    time.sleep(seconds)
    return seconds


BIG = 3000
base = numbers(limit=BIG)
summed = total(values=base)
pipeline = report(small=summed, big=scaled(values=base, factor=2))
other = total(values=numbers(limit=BIG + 1))
extended = total(values=scaled(values=base, factor=2))  # new, on an upstream pipeline built
model = checkpoint(steps=2)
random_task = noise(seed_hint=1)
failing = broken(values=numbers(limit=5))
both = [pipeline, other]
not_a_task = 42
mixed = [failing, other]
misplaced = total(values=kept_elsewhere(limit=3))  # its upstream's root key is not configured
