"""The store's gc lock: held shared by cache hits, and never a descriptor left open."""

from __future__ import annotations

import os

import stardag as sd
from stardag._config import target_root
from stardag.store._store import Store

sd.auto_namespace(__name__)


@sd.task
def one(n: int) -> int:
    return n


def test_cache_hits_leave_no_file_descriptor_open() -> None:
    """Many store objects checking a hit open the lock file only while they hold it."""
    sd.build(one(n=1))
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(200):
        assert Store(target_root()).is_complete(one(n=1).id)
    assert len(os.listdir("/proc/self/fd")) - before < 5
