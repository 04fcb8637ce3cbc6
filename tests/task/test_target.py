"""File targets and `sd.TargetTask`: plain files at paths under a root, written atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

import stardag as sd

sd.auto_namespace(__name__)


class WriteReport(sd.TargetTask[sd.FileTarget]):
    """A task whose output is a plain text file."""

    title: str

    def target(self) -> sd.FileTarget:
        return sd.get_file_target(f"reports/{self.title}.txt")

    def run(self) -> None:
        with self.target().open("w") as handle:
            handle.write(f"# {self.title}\n")


def test_target_task_writes_its_file(stardag_home: Path) -> None:
    """A TargetTask is complete once its file exists."""
    task = WriteReport(title="q3")
    assert not task.complete()
    sd.build(task)
    assert task.complete()
    assert (stardag_home / "store" / "reports" / "q3.txt").read_text() == "# q3\n"
    with task.output().open("r") as handle:
        assert handle.read() == "# q3\n"


def test_local_file_target_binary_round_trip(tmp_path: Path) -> None:
    """LocalFileTarget writes and reads bytes."""
    target = sd.LocalFileTarget(tmp_path / "sub" / "data.bin")
    assert not target.exists()
    with target.open("wb") as handle:
        handle.write(b"\x00\x01")
    assert target.exists()
    with target.open("rb") as handle:
        assert handle.read() == b"\x00\x01"


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    """An exception inside the write block publishes nothing, and no temp file remains."""
    target = sd.LocalFileTarget(tmp_path / "out.txt")
    with pytest.raises(RuntimeError), target.open("w") as handle:
        handle.write("partial")
        raise RuntimeError("crash mid-write")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_overwrite_is_atomic(tmp_path: Path) -> None:
    """Rewriting a file replaces it whole."""
    target = sd.LocalFileTarget(tmp_path / "out.txt")
    for text in ("first", "second"):
        with target.open("w") as handle:
            handle.write(text)
    with target.open() as handle:
        assert handle.read() == "second"


def test_memory_file_target() -> None:
    """A file target on an fsspec URL writes with one put and reads back."""
    target = sd.FileTarget("memory://stardag-target-test/a/b.txt")
    with target.open("w") as handle:
        handle.write("hello")
    assert target.exists()
    with target.open("r") as handle:
        assert handle.read() == "hello"


def test_get_file_target_uses_the_root_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`get_file_target(relpath, target_root_key=...)` resolves under that root."""
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__RAW", str(tmp_path / "raw"))
    target = sd.get_file_target("x/y.csv", target_root_key="raw")
    assert isinstance(target, sd.LocalFileTarget)
    assert Path(target.path) == tmp_path / "raw" / "x" / "y.csv"
    assert sd.get_target("x/y.csv", target_root_key="raw") == target


def test_bad_mode_is_rejected(tmp_path: Path) -> None:
    """Only r, rb, w and wb are supported."""
    with (
        pytest.raises(ValueError, match="unsupported mode"),
        sd.LocalFileTarget(tmp_path / "f").open("a"),
    ):
        pass
