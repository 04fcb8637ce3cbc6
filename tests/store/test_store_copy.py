"""Moving outputs between stores: verified blob copies and the blobs a record needs."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

import stardag as sd
from stardag.store._store import Store, blob_path

DATA = {
    "small": b"a small output " * 10,
    "compressible": bytes(range(256)) * (20 << 10),
    "raw": random.Random(0).randbytes(5 << 20),
}


def _pair(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Store, Store]:
    local = Store(str(tmp_path / "local"))
    if kind == "memory":
        return local, Store(f"memory://copy-{tmp_path.name}")
    options: dict[str, Any] = request.getfixturevalue("s3_options")
    return local, Store(request.getfixturevalue("s3_url"), storage_options=options)


@pytest.mark.parametrize("kind", ["memory", "s3"])
@pytest.mark.parametrize("name", list(DATA))
def test_copy_blob_both_ways(
    kind: str, name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A blob copied to another store and back reads equal, stored bytes unchanged."""
    local, remote = _pair(kind, tmp_path, request)
    digest = local.put_bytes(DATA[name]).digest
    assert local.copy_blob(digest, to=remote)
    assert remote.read_blob(digest) == DATA[name]
    assert remote.backend.read_bytes(blob_path(digest)) == local.backend.read_bytes(
        blob_path(digest)
    )
    local.delete_blob(digest)
    assert remote.copy_blob(digest, to=local)
    assert local.read_blob(digest) == DATA[name]


def test_copying_twice_copies_once(tmp_path: Path) -> None:
    """A blob the destination has already is not copied again."""
    source, dest = Store(str(tmp_path / "a")), Store(str(tmp_path / "b"))
    digest = source.put_bytes(DATA["small"]).digest
    assert source.copy_blob(digest, to=dest) is True
    assert source.copy_blob(digest, to=dest) is False


@pytest.mark.parametrize("damage", ["flip", "truncate", "append"])
def test_corrupt_source_is_never_published(tmp_path: Path, damage: str) -> None:
    """A damaged source blob raises CorruptBlobError and leaves nothing in the destination."""
    source, dest = Store(str(tmp_path / "a")), Store(str(tmp_path / "b"))
    digest = source.put_bytes(DATA["raw"]).digest
    path = tmp_path / "a" / blob_path(digest)
    stored = bytearray(path.read_bytes())
    if damage == "flip":
        stored[len(stored) // 2] ^= 1
    elif damage == "truncate":
        del stored[-1000:]
    else:
        stored += b"trailing"
    path.write_bytes(bytes(stored))
    with pytest.raises(sd.CorruptBlobError) as caught:
        source.copy_blob(digest, to=dest)
    assert caught.value.digest == digest
    assert list(dest.iter_blobs()) == [] and not any((tmp_path / "b" / "tmp").iterdir())


def test_copying_a_missing_blob_is_blob_not_found(tmp_path: Path) -> None:
    """Copying a digest the source lacks raises BlobNotFoundError."""
    source, dest = Store(str(tmp_path / "a")), Store(str(tmp_path / "b"))
    with pytest.raises(sd.BlobNotFoundError):
        source.copy_blob(blake3(b"absent").hexdigest(), to=dest)


@sd.task
def folder(n: int) -> sd.Directory:
    out = sd.Directory.staging()
    for i in range(n):
        (out.path / f"part-{i}.bin").write_bytes(bytes([i]) * 10_000)
    return out


@sd.task
def numbers(n: int) -> list[int]:
    return list(range(n))


def test_required_blobs_lists_a_directorys_files() -> None:
    """A directory record needs its manifest and each file; a plain one its own blob."""
    task, plain = folder(n=3), numbers(n=5000)
    sd.build([task, plain])
    store = task.output().store
    record, plain_record = task.output().record(), plain.output().record()
    assert record is not None and plain_record is not None
    files = [blake3(bytes([i]) * 10_000).hexdigest() for i in range(3)]
    assert set(store.required_blobs(record)) == {*files} | (
        set() if record.inline else {record.digest}
    )
    assert store.required_blobs(plain_record) == [plain_record.digest]
    assert store.has_blobs(store.required_blobs(record)) == set(store.required_blobs(record))
