"""Tasks for gc-against-a-running-build tests, in-process and from a second process.

Imported as the top-level module `gc_race_tasks` (tests/support is on the path), so
ids match in every process. A build of `top(salt)` reuses `old(salt)` (built before:
a cache hit), writes `twin(salt)` (the same bytes as `old`: one blob for both) and
computes `fresh(salt)`; `top` loads all three. `main()` builds `top` in a second
process; with GC_RACE_WAIT set, `fresh` waits there for a file before it finishes.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import stardag as sd

sd.auto_namespace(__name__)


def _numbers(salt: int) -> list[int]:
    return list(range(2000 + salt))  # over the inline limit: a blob of its own


@sd.task
def old(salt: int) -> list[int]:
    return _numbers(salt)


@sd.task
def twin(salt: int) -> list[int]:
    return _numbers(salt)


@sd.task
def fresh(salt: int) -> list[int]:
    wait = os.environ.get("GC_RACE_WAIT")
    if wait:
        Path(wait + ".ready").touch()  # everything upstream of `top` is checked by now
        while not Path(wait).exists():
            time.sleep(0.01)
    return [salt] * 3000


@sd.task
def top(a: sd.Depends[list[int]], b: sd.Depends[list[int]], c: sd.Depends[list[int]]) -> list[int]:
    return [sum(a), sum(b), sum(c)]


def pipeline(salt: int) -> sd.BaseTask:
    """The build under test: reuses `old`, writes `twin` (a shared blob), computes `fresh`."""
    return top(a=old(salt=salt), b=twin(salt=salt), c=fresh(salt=salt))


def main() -> None:
    """Build `pipeline(int(argv[1]))` in this process."""
    sd.build(pipeline(int(sys.argv[1])))
