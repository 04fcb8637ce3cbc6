"""Decompression bombs: a small blob that inflates far past the size its record claims.

Each reader runs in a child process whose address space is capped below the bomb's
size, so a reader that held the inflated bytes would die of MemoryError.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bombs import bomb
from cli_support import TESTS

CAP = 1 << 30  # the child's address space: well below the bomb's 2 GiB

SCRIPT = """
import dataclasses, os, sys
import stardag as sd
from stardag.maintenance._verify import check_blob
from stardag.store._store import Store, blob_path, record_path

sd.auto_namespace("bombs")

@sd.task
def numbers(limit: int) -> list[int]:
    return list(range(limit))

@sd.task
def noise(n: int) -> bytes:
    return os.urandom(n)

bomb = open(sys.argv[1], "rb").read()
remote = Store(sys.argv[2])
os.environ["STARDAG_REMOTE"] = "none"

def planted(task, store):
    sd.build(task)
    record = task.target().store.get_record(task.id)
    store.backend.put_bytes(blob_path(record.digest), bomb)
    return record

def expect_corrupt(what, call):
    try:
        call()
    except sd.CorruptBlobError as exc:
        assert "more than" in str(exc), exc
        print(what, "stopped")
    else:
        raise AssertionError(what + " read a bomb")

small, large = numbers(limit=3000), noise(n=6 << 20)
local = small.target().store
for task in (small, large):  # one read whole, one streamed
    planted(task, local)
    expect_corrupt(f"load of {task.get_name()}", task.load)

record = planted(numbers(limit=4000), remote)
remote.put_record(record)
local.delete_blob(record.digest)
expect_corrupt("copy", lambda: remote.copy_blob(record.digest, local, record.size_raw))
assert not local.has_blob(record.digest)
found = check_blob(local, local.get_record(small.id).digest)
assert found is not None and found[0].name == "DIGEST_MISMATCH", found
print("verify reported it")
"""


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


def test_a_bomb_stops_at_its_claimed_size_in_bounded_memory(tmp_path: Path) -> None:
    """Loading (whole and streamed), copying from a remote and verify all stop in 1 GiB."""
    path = tmp_path / "bomb"
    path.write_bytes(bomb())
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS),
        "MALLOC_ARENA_MAX": "2",  # each thread's malloc arena would count against the cap
        "STARDAG_ZSTD_THREADS": "0",
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(path), str(tmp_path / "remote")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_capped,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split("\n")[:4] == [
        "load of numbers stopped",
        "load of noise stopped",
        "copy stopped",
        "verify reported it",
    ]


@pytest.mark.parametrize("size", [1 << 20])
def test_the_bomb_is_a_valid_zstd_frame(size: int) -> None:
    """The test's bomb is what it claims: zstd decodes it to zeros of that size."""
    import zstandard

    out = zstandard.ZstdDecompressor().stream_reader(bomb(size)).read(size + 1)
    assert out == bytes(size)
