"""`stardag remote list`: how it reads."""

from __future__ import annotations

from pathlib import Path

from cli_support import invoke


def test_remote_list_aligns_its_columns(tmp_path: Path) -> None:
    """Names and URLs of different lengths line up in columns; `*` marks the active one."""
    invoke("remote", "add", "a-rather-long-name", str(tmp_path / "first"))
    invoke("remote", "add", "b", str(tmp_path / "second-and-longer"), "--trusted")
    invoke("remote", "add", "cc", "memory://third", "--write-through")
    lines = invoke("remote", "list").stdout.splitlines()
    assert [line[0] for line in lines] == ["*", " ", " "]
    urls = {
        line.index(str(tmp_path)) if str(tmp_path) in line else line.index("memory://")
        for line in lines
    }
    assert len(urls) == 1
    flags = {line.index("trusted") for line in lines if "trusted" in line}
    flags |= {line.index("write_through") for line in lines if "write_through" in line}
    assert len(flags) == 1
