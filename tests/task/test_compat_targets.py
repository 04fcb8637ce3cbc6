"""Targets and serializers of the released stardag 0.28 (issue 12)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Annotated, Any

import pytest

import stardag as sd
from stardag.target import DirectoryTarget, InMemoryFileTarget, get_directory_target
from stardag.target.serialize import (
    DumpsLoadsSerializer,
    JSONSerializer,
    PandasDataFrameCSVSerializer,
    PickleSerializer,
    PlainTextSerializer,
    SelfFileSerializer,
)

sd.auto_namespace(__name__)


def test_local_file_target_expands_the_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`~` is the user's home, not a folder named "~"."""
    monkeypatch.setenv("HOME", str(tmp_path))
    target = sd.LocalFileTarget("~/out/a.txt")
    assert target.uri == str(tmp_path / "out" / "a.txt") and target.path == tmp_path / "out/a.txt"
    with target.open("w") as handle:
        handle.write("hi")
    assert (tmp_path / "out" / "a.txt").read_text() == "hi"


def test_proxy_path_writes_atomically(tmp_path: Path) -> None:
    """proxy_path("w") publishes on success only; proxy_path("r") is the file."""
    target = sd.LocalFileTarget(tmp_path / "data.bin")
    with pytest.raises(RuntimeError), target.proxy_path("w") as path:
        path.write_bytes(b"half")
        raise RuntimeError("crash")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with target.proxy_path("w") as path:
        path.write_bytes(b"whole")
    with target.proxy_path("r") as path:
        assert path.read_bytes() == b"whole"


def test_open_aio_reads_and_writes(tmp_path: Path) -> None:
    """open_aio() gives awaitable read/write."""
    target = sd.LocalFileTarget(tmp_path / "t.txt")

    async def roundtrip() -> str:
        async with target.open_aio("w") as handle:
            await handle.write("async text")
        async with target.open_aio("r") as handle:
            return str(await handle.read())

    assert asyncio.run(roundtrip()) == "async text"


def test_remote_proxy_path_goes_through_a_local_copy() -> None:
    """A memory:// file target is downloaded for reading and uploaded after writing."""
    target = sd.FileTarget("memory://compat-proxy/x.bin")
    with target.proxy_path("w") as path:
        path.write_bytes(b"\x00\x01")
    assert target.exists()
    with target.proxy_path("r") as path:
        assert path.read_bytes() == b"\x00\x01"


def test_in_memory_file_target() -> None:
    """For tests: files by URI in this process, cleared on demand."""
    with InMemoryFileTarget.cleared() as files:
        target = InMemoryFileTarget("mem://a/b.txt")
        assert not target.exists()
        with target.open("w") as handle:
            handle.write("hello")
        assert files == {"mem://a/b.txt": b"hello"}
        with target.open("r") as handle:
            assert handle.read() == "hello"
        with pytest.raises(FileNotFoundError):
            InMemoryFileTarget("mem://missing").open("rb").__enter__()
    assert InMemoryFileTarget.uri_to_bytes == {}


class Shards(sd.TargetTask[DirectoryTarget]):
    """A task whose output is a folder of files, complete once marked done."""

    n: int

    def target(self) -> DirectoryTarget:
        return get_directory_target(f"shards/{self.id[:12]}")

    def run(self) -> None:
        folder = self.target()
        for i in range(self.n):
            with (folder / f"part-{i}.txt").open("w") as handle:
                handle.write(str(i))
        folder.mark_done()


def test_directory_target_task() -> None:
    """A directory target exists only after mark_done(); sub-targets are files."""
    task = Shards(n=3)
    assert not task.complete()
    sd.build(task)
    folder = task.target()
    assert folder.exists() and isinstance(folder, DirectoryTarget)
    with folder.sub_keys_target().open("r") as handle:
        assert handle.read().split("\n") == ["part-0.txt", "part-1.txt", "part-2.txt"]
    with folder.get_sub_target("part-2.txt").open("r") as handle:
        assert handle.read() == "2"
    with pytest.raises(ValueError, match="relative"):
        folder.get_sub_target("/etc/passwd")


class Csv(sd.Task[Annotated[Any, PandasDataFrameCSVSerializer()]]):
    rows: int

    def run(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            {"x": list(range(self.rows))}, index=[f"r{i}" for i in range(self.rows)]
        )


class Text(sd.Task[Annotated[str, PlainTextSerializer()]]):
    def run(self) -> str:
        return "plain"


class Json(sd.Task[Annotated[dict[str, int], JSONSerializer(dict[str, int])]]):
    def run(self) -> dict[str, int]:
        return {"b": 2, "a": 1}


class Pickled(sd.Task[Annotated[dict[str, int], PickleSerializer()]]):
    def run(self) -> dict[str, int]:
        return {"a": 1}


def test_released_serializer_names_store_content_addressed() -> None:
    """Annotated[T, Serializer()] as users write it: values land as verified blobs."""
    tasks = [Csv(rows=3), Text(), Json(), Pickled()]
    sd.build(tasks)
    frame = Csv(rows=3).load()
    assert list(frame.index) == ["r0", "r1", "r2"] and list(frame["x"]) == [0, 1, 2]
    assert Text().load() == "plain" and Json().load() == {"a": 1, "b": 2}
    assert Pickled().load() == {"a": 1}
    records = [t.target().record() for t in tasks]
    assert [r.serializer for r in records if r] == ["pandas-csv", "text", "json", "pickle"]
    text_record = Text().target().record()
    assert text_record is not None and len(text_record.digest) == 64


class Upper(DumpsLoadsSerializer[str, str]):
    """A custom serializer as a 0.28 user writes it: dumps/loads on text."""

    stream_type = str

    def dumps(self, obj: str) -> str:
        return obj.upper()

    def loads(self, data: str) -> str:
        return data.lower()


class Reversed:
    """A custom serializer against the bare 0.28 protocol: dump/load on a file target."""

    def dump(self, obj: list[int], target: Any) -> None:
        with target.open("wb") as handle:
            handle.write(json.dumps(obj[::-1]).encode())

    def load(self, target: Any) -> list[int]:
        with target.open("rb") as handle:
            return list(json.loads(handle.read()))[::-1]


class Custom(sd.Task[Annotated[str, Upper()]]):
    def run(self) -> str:
        return "shout"


class ViaProtocol(sd.Task[Annotated[list[int], Reversed()]]):
    def run(self) -> list[int]:
        return [1, 2, 3]


def test_custom_serializers_of_the_released_protocol_work_unchanged() -> None:
    """Their bytes are what they write, stored by digest, read back through them."""
    sd.build([Custom(), ViaProtocol()])
    assert Custom().load() == "shout" and ViaProtocol().load() == [1, 2, 3]
    record = ViaProtocol().target().record()
    assert record is not None and record.serializer.endswith("Reversed")
    store = ViaProtocol().target().store
    assert store.read_output(record) == b"[3, 2, 1]"


class Point:
    """Writes and reads itself (SelfFileSerializer)."""

    def __init__(self, x: int) -> None:
        self.x = x

    def dump(self, target: Any) -> None:
        with target.open("w") as handle:
            handle.write(str(self.x))

    @classmethod
    def load(cls, target: Any) -> Point:
        with target.open("r") as handle:
            return cls(int(handle.read()))


class MakePoint(sd.Task[Annotated[Point, SelfFileSerializer(Point)]]):
    def run(self) -> Point:
        return Point(7)


def test_self_file_serializer() -> None:
    """A class that dumps and loads itself through a file target."""
    sd.build(MakePoint())
    assert MakePoint().load().x == 7


def test_released_serializers_also_take_a_target(tmp_path: Path) -> None:
    """Called directly, as 0.28 code does, they write to and read from a file target."""
    target = sd.LocalFileTarget(tmp_path / "x.txt")
    PlainTextSerializer().dump("direct", target)
    assert PlainTextSerializer().load(target) == "direct"
    sink = io.BytesIO()
    PlainTextSerializer().dump("stream", sink)
    assert sink.getvalue() == b"stream"


def test_relpath_options_are_ignored_with_a_warning() -> None:
    """The released stardag's output-path options do nothing here, and say so."""
    from stardag.task._stored import RelpathIgnoredWarning

    with pytest.warns(RelpathIgnoredWarning, match="_relpath_base.*content's digest"):

        class Pathy(sd.Task[int]):
            @property
            def _relpath_base(self) -> str:
                return "custom"

            def run(self) -> int:
                return 5

    sd.build(Pathy())
    assert Pathy().load() == 5


def test_in_memory_target_keeps_values() -> None:
    """stardag.target.InMemoryTarget: save/load by key, for tests."""
    from stardag.target import InMemoryTarget

    with InMemoryTarget.cleared():
        target: InMemoryTarget[list[int]] = InMemoryTarget("k")
        assert not target.exists()
        target.save([1, 2])
        assert target.exists() and InMemoryTarget[list[int]]("k").load() == [1, 2]
        assert asyncio.run(target.load_aio()) == [1, 2]
    assert not InMemoryTarget("k").exists()
