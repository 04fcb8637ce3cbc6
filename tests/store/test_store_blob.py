"""Blobs: streamed writes and reads, compression chosen by a sample, bounded memory."""

from __future__ import annotations

import itertools
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import zstandard
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

import stardag as sd
from stardag.store._blob import Compression
from stardag.store._rawframe import raw_frame
from stardag.store._store import Store, blob_path


class Array(sd.Task[np.ndarray]):
    """An array output: random-like floats or small integers."""

    kind: str
    mib: int

    def run(self) -> np.ndarray:
        rng = np.random.default_rng(0)
        n = self.mib * (1 << 20) // 8
        if self.kind == "floats":
            return rng.standard_normal(n)
        return rng.integers(0, 1000, n, dtype=np.int64)


@pytest.mark.parametrize(("kind", "compression"), [("floats", "none"), ("ints", "zstd")])
def test_compression_follows_a_sample_and_the_record_says_which(
    kind: str, compression: str
) -> None:
    """Random-like floats are stored raw; small integers are compressed."""
    task = Array(kind=kind, mib=6)
    sd.build(task)
    record = task.output().record()
    assert record is not None and record.compression == compression
    if compression == "none":
        assert record.size_raw < record.size_stored < record.size_raw * 1.001
    else:
        assert record.size_stored < record.size_raw / 2
    np.testing.assert_array_equal(task.load(), task.run())


def test_small_incompressible_blob_is_stored_raw(tmp_path: Path) -> None:
    """Below the streaming threshold the same choice is made."""
    store = Store(str(tmp_path / "store"))
    info = store.put_bytes(random.Random(0).randbytes(100_000))
    assert info.compression == "none"
    assert info.size_stored == 6 + 3 + 100_000  # frame header, one raw block's header, bytes


def test_raw_frames_are_standard_zstd() -> None:
    """A raw-block frame decodes with plain zstd, empty or many blocks long."""
    for size in (0, 1, 128 << 10, (128 << 10) + 1, 1 << 20):
        data = random.Random(size).randbytes(size)
        assert (
            zstandard.ZstdDecompressor().decompressobj().decompress(raw_frame(memoryview(data)))
            == data
        )


def test_level_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`STARDAG_ZSTD_LEVEL` changes the stored bytes, never the digest."""
    data = b"".join(f"row {i}, value {i * i % 977}\n".encode() for i in range(200_000))
    fast = Store(str(tmp_path / "fast")).put_bytes(data)
    monkeypatch.setenv("STARDAG_ZSTD_LEVEL", "9")
    strong = Store(str(tmp_path / "strong")).put_bytes(data)
    assert strong.digest == fast.digest and strong.size_stored != fast.size_stored
    threaded = Store(str(tmp_path / "threads"), compression=Compression(level=1, threads=2))
    assert threaded.put_bytes(data).digest == fast.digest


def test_bad_level_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A level that is not an integer is a StardagError naming the variable."""
    monkeypatch.setenv("STARDAG_ZSTD_LEVEL", "fast")
    with pytest.raises(sd.StardagError, match="STARDAG_ZSTD_LEVEL"):
        Store(str(tmp_path / "store")).put_bytes(b"x" * 10_000)


@settings(max_examples=25, deadline=None)
@given(
    data=st.binary(max_size=300_000),
    cuts=st.lists(st.integers(min_value=0, max_value=300_000), max_size=8),
)
def test_digest_does_not_depend_on_how_writes_are_chunked(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, cuts: list[int]
) -> None:
    """Writing in any pieces gives blake3 of the whole, and reads back equal."""
    store = Store(str(tmp_path_factory.mktemp("store")))
    writer = store.writer()
    bounds = [0, *sorted(c for c in cuts if c < len(data)), len(data)]
    for start, end in itertools.pairwise(bounds):
        writer.write(memoryview(data)[start:end])
    info = writer.finish()
    assert info.digest == blake3(data).hexdigest()
    assert store.read_blob(info.digest) == data


def test_corruption_in_a_large_raw_blob_is_found_when_loading(stardag_home: Path) -> None:
    """One flipped byte in the middle of a streamed blob fails the load."""
    task = Array(kind="floats", mib=6)
    sd.build(task)
    record = task.output().record()
    assert record is not None
    path = stardag_home / "store" / blob_path(record.digest)
    with open(path, "r+b") as f:
        f.seek(3 << 20)
        byte = f.read(1)
        f.seek(3 << 20)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(sd.CorruptBlobError) as caught:
        task.load()
    assert (caught.value.digest, caught.value.task_id) == (record.digest, task.id)


def _peaks(task: Array) -> tuple[int, int]:
    """Peak bytes allocated (beyond what was there) while saving, then loading, `task`."""
    value = task.run()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        task.output().save(value)
        saved_peak = tracemalloc.get_traced_memory()[1] - base
        del value
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        loaded = task.load()
        load_peak = tracemalloc.get_traced_memory()[1] - base - loaded.nbytes
    finally:
        tracemalloc.stop()
    return saved_peak, load_peak


@pytest.mark.parametrize("kind", ["floats", "ints"])
def test_large_output_streams_in_bounded_memory(kind: str) -> None:
    """Saving and loading hold a few frames, not a copy: 4x the output adds almost nothing."""
    small_save, small_load = _peaks(Array(kind=kind, mib=16))
    big_save, big_load = _peaks(Array(kind=kind, mib=64))
    assert big_save < small_save + (8 << 20) and big_save < 0.4 * (64 << 20)
    assert big_load < small_load + (8 << 20) and big_load < 0.25 * (64 << 20)


def test_two_large_writes_can_be_interleaved(tmp_path: Path) -> None:
    """Two streaming writers fed in turn in one thread each store their own bytes."""
    store = Store(str(tmp_path / "store"))
    first, second = store.writer(), store.writer()
    one, two = bytes(range(256)) * 1024, bytes(range(255, -1, -1)) * 1024
    for _ in range(24):  # 6 MiB each, past the in-memory threshold
        first.write(one)
        second.write(two)
    a, b = first.finish(), second.finish()
    assert store.read_blob(a.digest) == one * 24 and store.read_blob(b.digest) == two * 24
