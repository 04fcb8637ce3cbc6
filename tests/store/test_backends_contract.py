"""One contract, every backend: local disk, `memory://` and S3 (a moto server on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import store_workers
import zstandard

import stardag as sd
from stardag.store._record import ActionRecord, now_iso
from stardag.store._store import Store, blob_path, record_path

PAYLOADS = {
    "empty": b"",
    "small": b"stardag " * 100,
    "compressible": bytes(range(256)) * (24 << 10),  # 6 MiB: streams through zstd
    "incompressible": os.urandom(5 << 20),  # 5 MiB: streams as raw blocks
}
BACKENDS = ["local", "memory", "s3"]


@pytest.fixture(params=BACKENDS)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any] | None]:
    """(root URL, storage options) of a fresh, empty store on each backend."""
    if request.param == "local":
        return str(tmp_path / "store"), None
    if request.param == "memory":
        return f"memory://stardag-{uuid.uuid4().hex}", None
    options = request.getfixturevalue("s3_options")
    return request.getfixturevalue("s3_url"), options


@pytest.fixture
def store(spec: tuple[str, dict[str, Any] | None]) -> Iterator[Store]:
    """A fresh store on the backend under test."""
    url, options = spec
    yield Store(url, storage_options=options)
    if url.startswith("memory://"):
        import fsspec

        with contextlib.suppress(FileNotFoundError):
            fsspec.filesystem("memory").rm(url[len("memory://") :], recursive=True)


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_put_then_read_round_trips(store: Store, payload: str) -> None:
    """Bytes put as a blob read back equal, whole and streamed."""
    data = PAYLOADS[payload]
    info = store.put_bytes(data)
    assert store.read_blob(info.digest) == data
    with store.open_blob(info.digest) as reader:
        assert reader.read() == data


def test_every_blob_is_a_standard_zstd_stream(store: Store) -> None:
    """Compressed or raw, a stored blob decompresses with plain zstd to its bytes."""
    for data in PAYLOADS.values():
        info = store.put_bytes(data)
        stored = store.backend.read_bytes(blob_path(info.digest))
        dctx = zstandard.ZstdDecompressor()
        assert dctx.stream_reader(stored, read_across_frames=True).read() == data
        assert info.size_stored == len(stored)


def test_put_is_idempotent(store: Store) -> None:
    """Putting the same bytes twice keeps one blob, unchanged."""
    first = store.put_bytes(PAYLOADS["small"])
    stored = store.backend.read_bytes(blob_path(first.digest))
    second = store.put_bytes(PAYLOADS["small"])
    assert second == first
    assert list(store.iter_blobs()) == [first.digest]
    assert store.backend.read_bytes(blob_path(first.digest)) == stored


def test_concurrent_puts_of_one_blob_from_threads(store: Store) -> None:
    """Eight threads putting one large blob at once leave one whole blob."""
    data = PAYLOADS["compressible"]
    digests: list[str] = []
    threads = [
        threading.Thread(target=lambda: digests.append(store.put_bytes(data).digest))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(digests)) == 1 and len(digests) == 8
    assert list(store.iter_blobs()) == digests[:1]
    assert store.read_blob(digests[0]) == data


def test_concurrent_puts_of_one_blob_from_processes(
    spec: tuple[str, dict[str, Any] | None],
) -> None:
    """Three processes putting one large blob at once leave one whole blob."""
    url, options = spec
    if url.startswith("memory://"):
        pytest.skip("memory:// lives inside one process")
    data = PAYLOADS["incompressible"]
    with ProcessPoolExecutor(3, mp_context=store_workers.forkserver()) as pool:
        digests = list(pool.map(store_workers.put, [url] * 3, [options] * 3, [data] * 3))
    store = Store(url, storage_options=options)
    assert len(set(digests)) == 1
    assert list(store.iter_blobs()) == digests[:1]
    assert store.read_blob(digests[0]) == data


def test_has_blob_and_has_blobs(store: Store) -> None:
    """Existence answers for one digest and for a batch."""
    present = [store.put_bytes(f"blob {i}".encode()).digest for i in range(3)]
    absent = [sd_digest(f"never stored {i}".encode()) for i in range(3)]
    assert store.has_blob(present[0]) and not store.has_blob(absent[0])
    assert store.has_blobs([*present, *absent]) == set(present)
    assert store.has_blobs([]) == set()


def test_stat_gives_stored_size(store: Store) -> None:
    """A blob's stat reports the size it takes in the store."""
    info = store.put_bytes(PAYLOADS["compressible"])
    assert store.stat_blob(info.digest).size == info.size_stored < info.size_raw


def test_iter_blobs_lists_every_blob(store: Store) -> None:
    """Listing yields each stored digest once, and nothing for an empty store."""
    assert list(store.iter_blobs()) == []
    digests = {store.put_bytes(data).digest for data in PAYLOADS.values()}
    assert set(store.iter_blobs()) == digests


def test_delete_blob(store: Store) -> None:
    """A deleted blob is gone; deleting a missing one is not an error."""
    info = store.put_bytes(PAYLOADS["small"])
    store.delete_blob(info.digest)
    assert not store.has_blob(info.digest)
    store.delete_blob(info.digest)


def test_missing_blob_is_blob_not_found(store: Store) -> None:
    """Reading a digest that is not stored raises BlobNotFoundError naming it."""
    digest = sd_digest(b"nowhere")
    for read in (store.read_blob, store.open_blob, store.stat_blob):
        with pytest.raises(sd.BlobNotFoundError) as caught:
            read(digest)
        assert caught.value.digest == digest


@pytest.mark.parametrize(
    "damage", ["flipped byte", "truncated", "trailing bytes", "not zstd", "other bytes"]
)
def test_corrupt_blob_is_detected(store: Store, damage: str) -> None:
    """A damaged blob raises CorruptBlobError naming its digest, whole or streamed."""
    data = PAYLOADS["small"]
    info = store.put_bytes(data)
    path = blob_path(info.digest)
    stored = bytearray(store.backend.read_bytes(path))
    if damage == "flipped byte":
        stored[len(stored) // 2] ^= 0xFF
    elif damage == "truncated":
        del stored[len(stored) // 2 :]
    elif damage == "trailing bytes":
        stored += b"trailing"
    elif damage == "not zstd":
        stored[:] = b"garbage" * 20
    else:
        stored[:] = zstandard.ZstdCompressor().compress(data.replace(b"s", b"z"))
    store.backend.put_bytes(path, bytes(stored))
    with pytest.raises(sd.CorruptBlobError) as caught:
        store.read_blob(info.digest)
    assert caught.value.digest == info.digest
    with pytest.raises(sd.CorruptBlobError), store.open_blob(info.digest) as reader:
        reader.read()


def test_records_round_trip_and_delete(store: Store) -> None:
    """A record published after its blob reads back equal, is listed, and can be deleted."""
    info = store.put_bytes(PAYLOADS["small"])
    record = _record("ab" * 32, info.digest, info.size_raw, info.size_stored)
    store.put_record(record)
    assert store.get_record(record.task_id) == record
    assert list(store.iter_records()) == [record.task_id]
    assert store.is_complete(record.task_id)
    store.delete_record(record.task_id)
    assert store.get_record(record.task_id) is None and not store.is_complete(record.task_id)


def test_record_needs_its_blob_first(store: Store) -> None:
    """Publishing a record whose blob is not stored fails and publishes nothing."""
    record = _record("cd" * 32, sd_digest(b"absent"), 6, 6)
    with pytest.raises(sd.BlobNotFoundError):
        store.put_record(record)
    assert not store.backend.exists(record_path(record.task_id))


def test_record_whose_blob_is_gone_is_incomplete(store: Store) -> None:
    """Deleting a blob makes the task incomplete rather than broken."""
    info = store.put_bytes(PAYLOADS["small"])
    record = _record("ef" * 32, info.digest, info.size_raw, info.size_stored)
    store.put_record(record)
    store.delete_blob(info.digest)
    assert not store.is_complete(record.task_id)


def test_aborted_writer_leaves_nothing(store: Store) -> None:
    """A writer aborted mid-stream publishes no blob."""
    writer = store.writer()
    writer.write(PAYLOADS["incompressible"])
    writer.abort()
    assert list(store.iter_blobs()) == []


def sd_digest(data: bytes) -> str:
    """The digest the store gives `data`."""
    from blake3 import blake3

    return blake3(data).hexdigest()


def _record(task_id: str, digest: str, size_raw: int, size_stored: int) -> ActionRecord:
    return ActionRecord(
        task_id=task_id,
        spec={"name": "t"},
        digest=digest,
        serializer="bytes",
        size_raw=size_raw,
        size_stored=size_stored,
        created=now_iso(),
    )


class Squares(sd.Task[list[int]]):
    """A task whose output (about 60 kB of JSON) is a blob, not inline."""

    n: int

    def run(self) -> list[int]:
        return [i * i for i in range(self.n)]


def test_tasks_build_and_load_on_every_backend(
    spec: tuple[str, dict[str, Any] | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root configured by URL (S3 options through fsspec's config) serves a whole build."""
    url, options = spec
    if options:
        import fsspec

        monkeypatch.setitem(fsspec.config.conf, "s3", options)
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__DEFAULT", url)
    task = Squares(n=10_000)
    assert not task.complete()
    sd.build(task)
    assert task.complete() and task.load()[-1] == 9999**2
    record = task.output().record()
    assert record is not None and record.inline is None


@pytest.mark.parametrize("size", [0, 100, 8191, 8192, 8193, 3 << 20])
def test_local_read_bytes_reads_the_whole_file(tmp_path: Path, size: int) -> None:
    """Local reads go through plain file descriptors: small files in one read, big in many."""
    from stardag.store._backends import LocalBackend

    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    assert LocalBackend(str(tmp_path)).read_bytes("f") == data
