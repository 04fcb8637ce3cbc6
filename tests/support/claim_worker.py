"""One builder process of the claims tests: waits for the start signal, builds an overlapping DAG.

Usage: python claim_worker.py K   (env: CLAIMS_DIR, STARDAG_HOME, STARDAG_REGISTRY_URL, ...)

Builder K builds a binary tree over leaves 16K .. 16K+63 (blocks of 16 leaves are
shared with its neighbours) joined with `slow(0)`, which every builder needs. Each
run of a task leaves one file `runs/<task>.<pid>.<random>`, so the test counts runs.
With CLAIMS_HANG set, the first run of `slow` announces its pid and hangs (to be killed).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

import stardag as sd

sd.namespace("claims_test", __name__)

DIR = Path(os.environ["CLAIMS_DIR"])
RUNS = DIR / "runs"
CONFIG = sd.ClaimConfig(ttl=2.0, heartbeat=0.3, poll=0.02, max_poll=0.2)


def mark(name: str) -> None:
    (RUNS / f"{name}.{os.getpid()}.{uuid.uuid4().hex}").write_text("")


@sd.task
def leaf(i: int) -> int:
    mark(f"leaf-{i}")
    time.sleep(0.002)
    return i


@sd.task
def pair(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    mark(f"pair-{a}-{b}")
    time.sleep(0.002)
    return a + b


@sd.task
def slow(n: int) -> int:
    first = not any(RUNS.glob("slow-*"))
    mark(f"slow-{n}")
    if first and os.environ.get("CLAIMS_HANG"):
        (DIR / "hanging.tmp").write_text(str(os.getpid()))
        os.replace(DIR / "hanging.tmp", DIR / "hanging")  # whole, or not there at all
        time.sleep(120)  # killed long before
    time.sleep(0.2)
    return n


def tree(first: int, count: int) -> sd.Task[int]:
    level: list[sd.Task[int]] = [leaf(i=i) for i in range(first, first + count)]
    while len(level) > 1:
        level = [pair(a=level[j], b=level[j + 1]) for j in range(0, len(level), 2)]
    return level[0]


def main(k: int) -> None:
    root = pair(a=tree(16 * k, 64), b=slow(n=0))
    while not (DIR / "go").exists():
        time.sleep(0.01)
    summary = sd.build(root, claims=CONFIG, max_workers=4)
    print(json.dumps({"build_id": summary.build_id, "ran": summary.ran}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
