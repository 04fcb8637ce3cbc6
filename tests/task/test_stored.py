"""Task outputs in the content-addressed store: layout, dedup, verification, roots."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel

import stardag as sd
from stardag.store import _serialize
from stardag.store._store import blob_path, record_path

sd.auto_namespace(__name__)


class Stats(BaseModel):
    mean: float
    counts: dict[str, int]


@sd.task
def make_bytes(n: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(n))


@sd.task
def make_text(word: str) -> str:
    return word * 3


@sd.task
def make_stats(x: int) -> Stats:
    return Stats(mean=x / 2, counts={"b": 2, "a": 1})


@sd.task
def make_tuple(x: int) -> tuple[int, str]:
    return (x, "x")


@sd.task
def make_lock(x: int) -> Any:
    return threading.Lock()


@sd.task
def make_wrong(x: int) -> int:
    return "not an int"  # type: ignore[return-value]  # the point of the test


@sd.task
def pickled(x: int) -> Annotated[list[int], _serialize.PickleSerializer()]:
    return [x]


def store_dir(home: Path) -> Path:
    return home / "store"


def test_output_lives_under_its_digest(stardag_home: Path) -> None:
    """A large output is a zstd blob at objects/<d[:2]>/<d[2:]>, its record beside it."""
    task = make_bytes(n=100_000)
    sd.build(task)
    record = task.target().record()
    assert record is not None and record.inline is None
    assert (store_dir(stardag_home) / blob_path(record.digest)).is_file()
    assert (store_dir(stardag_home) / record_path(task.id)).is_file()
    assert record.size_raw == 100_000
    assert task.load() == make_bytes.call(100_000)


def test_identical_outputs_are_stored_once(stardag_home: Path) -> None:
    """Two tasks with the same bytes share one blob."""
    a, b = make_bytes(n=50_000), make_bytes(n=50_000, seed=251)
    sd.build([a, b])
    ra, rb = a.target().record(), b.target().record()
    assert ra is not None and rb is not None and a.id != b.id
    assert ra.digest == rb.digest
    blobs = [p for p in (store_dir(stardag_home) / "objects").rglob("*") if p.is_file()]
    assert len(blobs) == 1


def test_small_output_is_inline_in_its_record(stardag_home: Path) -> None:
    """A small output needs no blob file: it lives in the action record."""
    task = make_text(word="ab")
    sd.build(task)
    record = task.target().record()
    assert record is not None and record.inline is not None
    assert not (store_dir(stardag_home) / "objects").exists()
    assert task.load() == "ababab"


def test_json_outputs_load_back_their_exact_type() -> None:
    """JSON outputs come back as the declared type: models and tuples included."""
    stats, pair = make_stats(x=3), make_tuple(x=1)
    sd.build([stats, pair])
    assert stats.load() == Stats(mean=1.5, counts={"a": 1, "b": 2})
    assert pair.load() == (1, "x")
    assert make_stats(x=3).target().record().serializer == "json"  # type: ignore[union-attr]


def test_annotated_serializer_is_used() -> None:
    """`Annotated[T, serializer]` picks the serializer explicitly."""
    sd.build(pickled(x=4))
    assert pickled(x=4).load() == [4]
    assert pickled(x=4).target().record().serializer == "pickle"  # type: ignore[union-attr]


def test_unserializable_result_leaves_nothing(stardag_home: Path) -> None:
    """A value its serializer cannot store fails clearly and leaves no record or blob."""
    with pytest.raises(sd.SerializationError, match="make_lock") as info:
        sd.build(make_lock(x=1))
    assert info.value.task_id == make_lock(x=1).id
    assert not make_lock(x=1).complete()
    assert not (store_dir(stardag_home) / "records").exists()
    assert not (store_dir(stardag_home) / "objects").exists()
    assert not list((store_dir(stardag_home) / "tmp").glob("*"))


def test_value_of_the_wrong_type_is_a_serialization_error() -> None:
    """A task returning another type than it declares fails at save."""
    with pytest.raises(sd.SerializationError, match="make_wrong"):
        sd.build(make_wrong(x=1))


def test_corrupt_blob_is_detected_on_load(stardag_home: Path) -> None:
    """Flipping a stored byte makes loading raise CorruptBlobError naming digest and task."""
    task = make_bytes(n=20_000)
    sd.build(task)
    record = task.target().record()
    assert record is not None
    path = store_dir(stardag_home) / blob_path(record.digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    with pytest.raises(sd.CorruptBlobError) as info:
        task.load()
    assert info.value.digest == record.digest and info.value.task_id == task.id
    assert record.digest in str(info.value)


def test_tampered_inline_output_is_detected(stardag_home: Path) -> None:
    """An inline output is verified against its digest too."""
    task = make_text(word="ok")
    sd.build(task)
    path = store_dir(stardag_home) / record_path(task.id)
    import base64

    text = path.read_text().replace(
        base64.b64encode(b"okokok").decode(), base64.b64encode(b"nonono").decode()
    )
    os.chmod(path, 0o644)
    path.write_text(text)
    with pytest.raises(sd.CorruptBlobError, match=task.id[:12]):
        task.load()


def test_missing_blob_means_incomplete_and_rebuilds(stardag_home: Path) -> None:
    """A record whose blob is gone is not complete: the next build recomputes it."""
    task = make_bytes(n=30_000)
    sd.build(task)
    record = task.target().record()
    assert record is not None
    (store_dir(stardag_home) / blob_path(record.digest)).unlink()
    assert not task.complete()
    assert sd.build(task).ran == 1
    assert task.load() == make_bytes.call(30_000)


def test_roots_are_read_at_use_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Completeness is decided by the root configured when asked."""
    task = make_text(word="r")
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__DEFAULT", str(tmp_path / "one"))
    sd.build(task)
    assert task.complete()
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__DEFAULT", str(tmp_path / "two"))
    assert not task.complete()
    monkeypatch.setenv("STARDAG_TARGET_ROOTS", '{"default": "%s"}' % (tmp_path / "one"))
    monkeypatch.delenv("STARDAG_TARGET_ROOTS__DEFAULT")
    assert task.complete()


@sd.task
def moves_the_root(to: str) -> int:
    os.environ["STARDAG_TARGET_ROOTS__DEFAULT"] = to
    return 1


@sd.task
def after_the_move(moved: sd.Depends[int]) -> int:
    return moved + 1


def test_a_build_writes_under_the_roots_it_began_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task that changes the roots while its build runs moves nothing of that build."""
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__DEFAULT", str(tmp_path / "one"))
    root = after_the_move(moved=moves_the_root(to=str(tmp_path / "two")))
    sd.build(root, registry=None)
    assert os.environ["STARDAG_TARGET_ROOTS__DEFAULT"] == str(tmp_path / "two")
    assert not root.complete()  # asked outside the build: the root now configured
    for task in (root, root.moved):
        assert (tmp_path / "one" / record_path(task.id)).is_file()
    assert not (tmp_path / "two").exists()


def test_memory_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """An fsspec `memory://` root works as a store."""
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__DEFAULT", "memory://stardag-test-stored")
    task = make_bytes(n=10_000, seed=3)
    sd.build(task)
    assert task.load() == make_bytes.call(10_000, seed=3)


def test_unknown_root_key_is_a_clear_error() -> None:
    """A task writing to an unconfigured root key says which keys exist and how to set it."""

    @sd.task(target_root_key="archive")
    def archived(x: int) -> int:
        return x

    with pytest.raises(sd.UnknownRootKeyError, match="STARDAG_TARGET_ROOTS__ARCHIVE"):
        sd.build(archived(x=1))


def test_named_root_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task can write to another configured root."""
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__ARCHIVE", str(tmp_path / "archive"))

    @sd.task(target_root_key="archive")
    def archived2(x: int) -> int:
        return x

    sd.build(archived2(x=2))
    assert archived2(x=2).load() == 2
    assert (tmp_path / "archive" / record_path(archived2(x=2).id)).is_file()
