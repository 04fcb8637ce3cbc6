"""`stardag remote list`: how it reads."""

from __future__ import annotations

import json
from pathlib import Path

import cli_tasks
from cli_support import invoke

import stardag as sd


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


def test_push_accepts_a_list_of_tasks(tmp_path: Path) -> None:
    """`push module:attr` naming a list pushes the closure of every task in it."""
    sd.build(cli_tasks.both)
    result = invoke("push", "cli_tasks:both", "--remote", str(tmp_path / "remote"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["tasks"] == 6  # report, scaled, total, numbers; other and its numbers
