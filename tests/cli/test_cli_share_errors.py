"""Errors around shared stores that a user can act on: remote URLs, and corrupt blobs in `cat`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_support import invoke, shell

import stardag as sd
from stardag._config import target_root
from stardag.store._store import blob_path, store_for

sd.auto_namespace(__name__)


@sd.task
def noise(n: int) -> bytes:
    return os.urandom(6 << 20)  # incompressible, past the small-blob size: streamed


def _remotes(home: Path) -> dict[str, object]:
    return json.loads((home / "remotes.json").read_text())["remotes"]  # type: ignore[no-any-return]


def test_remote_add_makes_a_relative_path_absolute(
    stardag_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path given relative is stored absolute, so the remote means one place from anywhere."""
    monkeypatch.chdir(tmp_path)
    done = invoke("remote", "add", "team", "./shared/cache")
    assert done.exit_code == 0, done.output
    assert _remotes(stardag_home)["team"] == {
        "url": str(tmp_path / "shared" / "cache"),
        "trusted": False,
        "write_through": False,
    }


def test_remote_add_refuses_an_unknown_protocol(stardag_home: Path) -> None:
    """A misspelt protocol is one line and exit 2, and nothing is configured."""
    done = shell("remote", "add", "team", "s4://bucket/cache")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "'s4' is not a storage protocol" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (stardag_home / "remotes.json").exists()


def test_cat_of_a_corrupt_blob_writes_nothing_and_fails(tmp_path: Path) -> None:
    """`stardag cat` of a damaged large blob exits non-zero, says so, and writes no byte."""
    task = noise(n=1)
    sd.build(task)
    store = store_for(target_root())
    record = store.get_record(task.id)
    assert record is not None and record.inline is None
    path = Path(store.backend.abspath(blob_path(record.digest)))  # type: ignore[attr-defined]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a raw block: only the digest can tell
    path.write_bytes(bytes(data))
    done = shell("cat", task.id)
    assert done.returncode == 1 and done.stdout == ""
    assert "is corrupt" in done.stderr and record.digest in done.stderr
