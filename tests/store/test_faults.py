"""Crashes and dead remotes: a killed writer or a silent server leaves nothing that lies."""

from __future__ import annotations

import contextlib
import random
import resource
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import store_workers
from silent_proxy import SilentProxy, through

import stardag as sd
from stardag.store._store import Store

KILLS_LOCAL = 40
KILLS_S3 = 6


def _kill_writers(root: str, options: dict[str, Any] | None, kills: int, seed: int) -> int:
    """Start and SIGKILL a writer `kills` times; how many kills left a write half done."""
    context = store_workers.forkserver()
    rng = random.Random(seed)
    interrupted = 0
    for attempt in range(kills):
        ready = context.Event()
        child = context.Process(
            target=store_workers.save_forever,
            args=(f"{root}/{attempt}", options, seed * 1000 + attempt, ready),
        )
        child.start()
        assert ready.wait(30), "the writer did not start"
        threading.Event().wait(rng.uniform(0.0, 0.3))
        child.kill()
        child.join()
        assert child.exitcode == -9
        interrupted += _check_store(Store(f"{root}/{attempt}", storage_options=options))
    return interrupted


def _check_store(store: Store) -> int:
    """Every published blob and record is whole; the number of writes left in tmp/."""
    for digest in store.iter_blobs():
        store.read_blob(digest)  # CorruptBlobError if partial
    for task_id in store.iter_records():
        record = store.get_record(task_id)
        assert record is not None and store.is_complete(task_id)
        store.read_output(record)
    left = [path for path in store.backend.walk("tmp")]
    for path in left:
        store.backend.delete(path)  # so each round counts its own
    return len(left)


def test_sigkilled_writer_leaves_no_partial_blob_or_record(tmp_path: Path) -> None:
    """A writer killed at random points leaves only whole blobs and records (many runs)."""
    interrupted = _kill_writers(str(tmp_path / "store"), None, KILLS_LOCAL, seed=1)
    assert interrupted > 0, "no kill landed mid-write: the test exercised nothing"


def test_sigkilled_writer_to_s3_leaves_no_partial_object(
    s3_options: dict[str, Any], s3_url: str
) -> None:
    """On S3, a writer killed mid-put leaves no object under a final name."""
    _kill_writers(s3_url, s3_options, KILLS_S3, seed=2)


@pytest.fixture
def silent_proxy(s3_options: dict[str, Any]) -> Iterator[SilentProxy]:
    """A proxy to the S3 server that goes silent after 1 MiB of requests."""
    host, port = str(s3_options["endpoint_url"]).rsplit("//", 1)[1].split(":")
    proxy = SilentProxy((host, int(port)), silence_after=1 << 20)
    yield proxy
    proxy.close()


def test_remote_that_stops_answering_mid_write_is_a_clear_error(
    silent_proxy: SilentProxy,
    s3_options: dict[str, Any],
    s3_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A write to a remote that goes silent raises BackendError; no blob appears."""
    monkeypatch.setenv("STARDAG_REMOTE_TIMEOUT", "1")
    store = Store(s3_url, storage_options=through(silent_proxy, s3_options))
    with pytest.raises(sd.BackendError) as caught:
        store.put_bytes(random.Random(0).randbytes(2 << 20))
    assert silent_proxy.silenced.is_set()
    assert caught.value.url == s3_url and "failed to write" in str(caught.value)
    assert list(Store(s3_url, storage_options=s3_options).iter_blobs()) == []


class Blob(sd.Task[bytes]):
    """Two MiB of random bytes."""

    seed: int

    def run(self) -> bytes:
        return random.Random(self.seed).randbytes(2 << 20)


def test_remote_that_stops_answering_leaves_no_record(
    silent_proxy: SilentProxy,
    s3_options: dict[str, Any],
    s3_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task saved to a silent remote fails clearly and publishes no record."""
    import fsspec

    monkeypatch.setitem(fsspec.config.conf, "s3", through(silent_proxy, s3_options))
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__DEFAULT", s3_url)
    monkeypatch.setenv("STARDAG_REMOTE_TIMEOUT", "1")
    task = Blob(seed=uuid.uuid4().int % 1000)
    with pytest.raises(sd.BackendError):
        task.output().save(task.run())
    direct = Store(s3_url, storage_options=s3_options)
    assert list(direct.iter_records()) == [] and list(direct.iter_blobs()) == []


@contextlib.contextmanager
def _file_size_limit(size: int) -> Iterator[None]:
    """Writes past `size` bytes fail with EFBIG, as writes to a full disk fail with ENOSPC."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a dead process
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_no_room_mid_blob_is_a_clear_error_and_keeps_nothing(stardag_home: Path) -> None:
    """Out of room halfway through a 2 MiB output: BackendError, no file kept, rebuild works."""
    task = Blob(seed=7)
    with _file_size_limit(1 << 20), pytest.raises(sd.BackendError) as caught:
        sd.build(task)
    assert "no room left" in str(caught.value) and "stardag gc" in str(caught.value)
    store = Store(str(stardag_home / "store"))
    assert list(store.iter_blobs()) == [] and list(store.iter_records()) == []
    assert list(store.backend.walk("tmp")) == []
    assert not task.complete()
    sd.build(task)
    assert task.load() == task.run()
