"""Directory outputs: a tree of files stored as blobs plus a manifest, through real tasks."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from blake3 import blake3
from bombs import bomb

import stardag as sd
from stardag.store._record import ActionRecord, now_iso
from stardag.store._store import blob_path

WEIGHTS = bytes(range(256)) * 4096  # 1 MiB, shared by every checkpoint below


@sd.task
def checkpoint(step: int) -> sd.Directory:
    out = sd.Directory.staging()
    (out.path / "model").mkdir()
    (out.path / "model" / "weights.bin").write_bytes(WEIGHTS)
    (out.path / "config.json").write_text(json.dumps({"step": step}))
    (out.path / "logs").mkdir()  # empty folders are kept too
    return out


class Checkpoint(sd.Task[sd.Directory]):
    """The class API: the staging folder comes from the task's own output."""

    step: int

    def run(self) -> sd.Directory:
        out = self.target().staging_dir()
        (out.path / "model").mkdir()
        (out.path / "model" / "weights.bin").write_bytes(WEIGHTS)
        (out.path / "config.json").write_text(json.dumps({"step": self.step}))
        return out


@sd.task
def step_of(ckpt: sd.Depends[sd.Directory]) -> int:
    return int(json.loads(ckpt.read_bytes("config.json"))["step"])


def _blobs(home: Path) -> set[str]:
    objects = home / "store" / "objects"
    return {f"{p.parent.name}{p.name}" for p in objects.rglob("*") if p.is_file()}


def test_directory_output_round_trips_through_a_task() -> None:
    """A function task's folder loads back with the same files and folders."""
    task = checkpoint(step=1)
    sd.build(task)
    loaded = task.load()
    assert isinstance(loaded, sd.Directory)
    assert loaded.names() == ["config.json", "model/weights.bin"]
    assert loaded.read_bytes("model/weights.bin") == WEIGHTS
    assert sorted(p.relative_to(loaded.path).as_posix() for p in loaded.path.rglob("*")) == [
        "config.json",
        "logs",
        "model",
        "model/weights.bin",
    ]


def test_class_task_writes_into_its_outputs_staging_dir() -> None:
    """`self.target().staging_dir()` gives the class API the same folder outputs."""
    task = Checkpoint(step=2)
    sd.build(task)
    assert json.loads(task.load().read_bytes("config.json")) == {"step": 2}


def test_record_names_the_manifest_and_the_serializer() -> None:
    """The output digest is the manifest's; its files are listed with sizes and digests."""
    task = checkpoint(step=3)
    sd.build(task)
    record = task.output().record()
    assert record is not None and record.serializer == "directory"
    loaded = task.load()
    assert loaded.digest == record.digest and loaded.manifest is not None
    sizes = {entry.path: entry.size for entry in loaded.manifest.files}
    assert sizes == {"config.json": len('{"step": 3}'), "model/weights.bin": len(WEIGHTS)}


def test_identical_files_are_stored_once_across_outputs(stardag_home: Path) -> None:
    """Two checkpoints sharing a weights file add one blob for it, not two."""
    sd.build(checkpoint(step=4))
    before = _blobs(stardag_home)
    sd.build(checkpoint(step=5))
    added = _blobs(stardag_home) - before
    weights = blake3(WEIGHTS).hexdigest()
    assert weights in before and weights not in added
    assert len(added) <= 2  # the new config.json, and the manifest unless it is inline


def test_staging_folder_is_removed_once_stored(stardag_home: Path) -> None:
    """The store's staging folder does not outlive the save."""
    sd.build(checkpoint(step=6))
    assert not any((stardag_home / "store" / "tmp").glob("dir-*"))


def test_a_folder_of_your_own_is_left_alone(tmp_path: Path) -> None:
    """`sd.Directory(path)` stores any local folder and does not remove it."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "a.txt").write_text("a")

    @sd.task
    def mine(tag: str) -> sd.Directory:
        return sd.Directory(folder)

    sd.build(mine(tag="x"))
    assert (folder / "a.txt").read_text() == "a"
    assert mine(tag="x").load().read_bytes("a.txt") == b"a"


def test_open_streams_one_file_without_materializing(stardag_home: Path) -> None:
    """Reading one file of a loaded directory writes nothing to disk."""
    task = checkpoint(step=7)
    sd.build(task)
    with task.load().open("model/weights.bin") as f:
        assert f.read(1024) == WEIGHTS[:1024]
    assert not (stardag_home / "checkouts").exists()


def test_materialize_into_a_folder_of_your_choice(tmp_path: Path) -> None:
    """`materialize(dest)` writes the whole tree there; a non-empty dest is refused."""
    task = checkpoint(step=8)
    sd.build(task)
    dest = task.load().materialize(tmp_path / "out")
    assert (dest / "model" / "weights.bin").read_bytes() == WEIGHTS
    with pytest.raises(sd.StardagError, match="not empty"):
        task.load().materialize(dest)


def test_path_materializes_once_and_is_reused() -> None:
    """Two loads of one output share one materialized folder."""
    task = checkpoint(step=9)
    sd.build(task)
    first, second = task.load(), task.load()
    assert first.path == second.path and os.fspath(first) == str(first.path)


def test_downstream_task_reads_a_directory_dependency() -> None:
    """A task depending on a directory output gets an sd.Directory to read."""
    task = step_of(ckpt=checkpoint(step=10))
    sd.build(task)
    assert task.load() == 10


def test_returning_a_loaded_directory_reuses_its_manifest() -> None:
    """A task passing an upstream directory through stores no new file blobs."""

    @sd.task
    def same(ckpt: sd.Depends[sd.Directory]) -> sd.Directory:
        return ckpt

    upstream = checkpoint(step=11)
    task = same(ckpt=upstream)
    sd.build(task)
    assert task.load().digest == upstream.load().digest


def test_missing_file_blob_makes_the_task_incomplete(stardag_home: Path) -> None:
    """A directory output whose file blob is gone is rebuilt, not loaded half."""
    task = checkpoint(step=12)
    sd.build(task)
    weights = blake3(WEIGHTS).hexdigest()
    (stardag_home / "store" / blob_path(weights)).unlink()
    assert not task.complete()
    sd.build(task)
    assert task.complete() and task.load().read_bytes("model/weights.bin") == WEIGHTS


def test_corrupt_file_is_detected_when_read(stardag_home: Path) -> None:
    """A damaged file blob raises CorruptBlobError naming its digest."""
    task = checkpoint(step=13)
    sd.build(task)
    weights = blake3(WEIGHTS).hexdigest()
    path = stardag_home / "store" / blob_path(weights)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(sd.CorruptBlobError) as caught:
        task.load().read_bytes("model/weights.bin")
    assert caught.value.digest == weights


@pytest.mark.parametrize("bad", ["../escape", "/etc/passwd", "a//b", "a/./b", "C:/x"])
def test_manifest_with_an_escaping_path_is_refused(bad: str) -> None:
    """A manifest naming a path outside its folder does not load."""
    task = checkpoint(step=14)
    digest = blake3(b"x").hexdigest()
    manifest = json.dumps(
        {
            "dirs": [],
            "files": [{"digest": digest, "path": bad, "size": 1}],
            "format": "stardag.directory/1",
        }
    ).encode()
    task.output().store.put_record(
        ActionRecord(
            task_id=task.id,
            spec=task.spec(),
            digest=blake3(manifest).hexdigest(),
            serializer="directory",
            size_raw=len(manifest),
            size_stored=0,
            created=now_iso(),
            inline=base64.b64encode(manifest).decode(),
        )
    )
    with pytest.raises(sd.SerializationError, match=r"escape|portable"):
        task.load()


def test_a_link_to_a_folder_is_refused(tmp_path: Path) -> None:
    """Links to files are stored by content; a link to a folder is an error."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "f").write_text("f")

    @sd.task
    def linked(kind: str) -> sd.Directory:
        out = sd.Directory.staging()
        if kind == "file":
            (out.path / "link").symlink_to(target / "f")
        else:
            (out.path / "link").symlink_to(target)
        return out

    sd.build(linked(kind="file"))
    assert linked(kind="file").load().read_bytes("link") == b"f"
    with pytest.raises(sd.StardagError, match="link to a folder"):
        sd.build(linked(kind="folder"))


def test_directory_output_in_a_memory_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory output works on a non-local root too (here `memory://`)."""
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__DEFAULT", "memory://stardag-directory-test")
    task = checkpoint(step=15)
    sd.build(task)
    loaded = task.load()
    assert loaded.read_bytes("model/weights.bin") == WEIGHTS
    assert (loaded.path / "config.json").read_text() == '{"step": 15}'


def test_two_files_can_be_streamed_at_once() -> None:
    """Reading two files of one output interleaved gives each its own bytes."""

    @sd.task
    def pair(n: int) -> sd.Directory:
        out = sd.Directory.staging()
        (out.path / "a").write_bytes(bytes(range(256)) * n)
        (out.path / "b").write_bytes(bytes(range(255, -1, -1)) * n)
        return out

    task = pair(n=4096)
    sd.build(task)
    loaded = task.load()
    with loaded.open("a") as a, loaded.open("b") as b:
        got_a, got_b = [], []
        while chunk := a.read(5000):
            got_a.append(chunk)
            got_b.append(b.read(5000))
    assert b"".join(got_a) == bytes(range(256)) * 4096
    assert b"".join(got_b) == bytes(range(255, -1, -1)) * 4096


def test_open_is_seekable_on_local_disk(stardag_home: Path) -> None:
    """From a local store, `open()` gives a verified file that seeks like any other."""
    task = checkpoint(step=17)
    sd.build(task)
    with task.load().open("model/weights.bin") as f:
        assert f.seekable()
        f.seek(1000)
        assert f.read(10) == WEIGHTS[1000:1010]
        assert f.seek(0, os.SEEK_END) == len(WEIGHTS)
        f.seek(0)
        assert f.read() == WEIGHTS
    assert not any((stardag_home / "store" / "tmp").iterdir())  # nothing left behind


@pytest.mark.parametrize("read", ["open", "path"])
def test_a_file_blob_that_inflates_past_its_size_stops_there(stardag_home: Path, read: str) -> None:
    """A file whose blob decodes far past its manifest size is refused at that size."""
    task = checkpoint(step=18)
    sd.build(task)
    weights = blake3(WEIGHTS).hexdigest()
    (stardag_home / "store" / blob_path(weights)).write_bytes(bomb(256 << 20))
    loaded = task.load()
    with pytest.raises(sd.CorruptBlobError, match="more than") as caught:
        if read == "open":
            loaded.open("model/weights.bin").close()
        else:
            _ = loaded.path
    assert caught.value.digest == weights
    assert not any((stardag_home / "store" / "tmp").iterdir())  # no partial copy left
    assert not (stardag_home / "checkouts").exists() or not any(
        (stardag_home / "checkouts").iterdir()
    )
