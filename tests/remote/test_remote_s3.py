"""Remote sharing over S3 (a moto server on 127.0.0.1): a remote that vanishes mid-push."""

from __future__ import annotations

import random
from typing import Any

import fsspec
import pytest
from silent_proxy import SilentProxy, through

import stardag as sd
from stardag.store._store import Store

sd.auto_namespace(__name__)


class Noise(sd.Task[bytes]):
    """One MiB of random bytes: a blob of its own that does not compress."""

    seed: int

    def run(self) -> bytes:
        return random.Random(self.seed).randbytes(1 << 20)


class Bundle(sd.Task[int]):
    """Needs four blobs."""

    def requires(self) -> list[Noise]:  # type: ignore[override]
        return [Noise(seed=i) for i in range(4)]

    def run(self) -> int:
        return sum(len(dep.load()) for dep in self.requires())


@pytest.fixture
def silent_proxy(s3_options: dict[str, Any]) -> Any:
    """A proxy to the S3 server that goes silent after 1.5 MiB of requests."""
    host, port = str(s3_options["endpoint_url"]).rsplit("//", 1)[1].split(":")
    proxy = SilentProxy((host, int(port)), silence_after=3 << 19)
    yield proxy
    proxy.close()


def test_remote_that_vanishes_mid_push_is_a_clear_error_and_no_record_dangles(
    silent_proxy: SilentProxy,
    s3_options: dict[str, Any],
    s3_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cut off after some blobs: RemoteError, no record on the remote; a retry completes."""
    root = Bundle()
    sd.build(root)
    monkeypatch.setenv("STARDAG_REMOTE_TIMEOUT", "1")
    monkeypatch.setitem(fsspec.config.conf, "s3", through(silent_proxy, s3_options))
    with pytest.raises(sd.RemoteError, match="failed") as caught:
        sd.push([root], remote=s3_url)
    assert silent_proxy.silenced.is_set()
    assert "run it again" in str(caught.value)
    direct = Store(s3_url, storage_options=s3_options)
    assert list(direct.iter_records()) == []
    for digest in direct.iter_blobs():
        direct.read_blob(digest)  # whole, or not there at all
    monkeypatch.setitem(fsspec.config.conf, "s3", s3_options)
    from stardag.store import _store

    _store._STORES.pop(s3_url, None)  # a fresh client through the live endpoint
    report = sd.push([root], remote=s3_url)
    assert report.records_sent == 5
    assert all(direct.is_complete(task_id) for task_id in direct.iter_records())
