"""`stardag verify`: exit codes, classes, repair, samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cli_tasks
import pytest
from cli_support import invoke, shell

import stardag as sd


@pytest.fixture(autouse=True)
def built() -> None:
    """The pipeline, built and recorded."""
    sd.build(cli_tasks.pipeline)


def _blob_file(task: sd.Task[object]) -> Path:
    record = task.target().record()
    assert record is not None
    store = task.target().store
    return Path(store.backend.abspath(f"objects/{record.digest[:2]}/{record.digest[2:]}"))  # type: ignore[attr-defined]


def test_a_sound_store_verifies_with_exit_code_0() -> None:
    """Nothing wrong: a summary line and exit 0."""
    result = invoke("verify")
    assert result.exit_code == 0, result.output
    assert "0 errors, 0 warnings" in result.stdout


def test_damage_fails_with_its_class_then_repair_fixes_it() -> None:
    """A truncated blob: exit 1 naming the class and task; --repair; clean again."""
    blob = _blob_file(cli_tasks.base)
    blob.write_bytes(blob.read_bytes()[:40])
    found = invoke("verify", "--json")
    assert found.exit_code == 1
    report = json.loads(found.stdout)
    assert report["by_kind"] == {"truncated-frame": 1}
    assert report["findings"][0]["task_ids"] == [cli_tasks.base.id]
    repaired = invoke("verify", "--repair")
    assert repaired.exit_code == 1 and "repaired" in repaired.stdout
    assert invoke("verify").exit_code == 0
    assert sd.build(cli_tasks.base).ran == 1  # it rebuilds


def test_warnings_pass_unless_strict() -> None:
    """An old temp file is a warning: exit 0, or 1 with --strict."""
    store = cli_tasks.base.target().store
    leftover = Path(store.backend.abspath("tmp/leftover"))  # type: ignore[attr-defined]
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"x")
    then = time.time() - 7200
    os.utime(leftover, (then, then))
    assert invoke("verify").exit_code == 0
    assert invoke("verify", "--strict").exit_code == 1
    assert "orphan-temp" in invoke("verify", "--repair").stdout
    assert not leftover.exists()


def test_a_sample_checks_a_share() -> None:
    """--sample 50% checks about half the records; a bad percentage is bad input."""
    report = json.loads(invoke("verify", "--sample", "50%", "--json").stdout)
    assert report["sample"] == 0.5 and report["checked"]["records"] == 2
    bad = invoke("verify", "--sample", "150%")
    assert bad.exit_code == 2 and "at most 100%" in bad.stderr


def test_verify_from_a_fresh_shell() -> None:
    """The console script verifies, and fails on damage."""
    assert shell("verify").returncode == 0
    _blob_file(cli_tasks.base).unlink()
    done = shell("verify")
    assert done.returncode == 1 and "missing-blob" in done.stdout


def test_verify_reads_a_sqlite_registry_without_importing_sqlalchemy() -> None:
    """Without --repair, `stardag verify` reads a plain SQLite file through `sqlite3`:
    a fresh process does not pay for importing SQLAlchemy (~0.3 s)."""
    code = (
        "import sys\n"
        "from stardag.cli import app\n"
        "app(['verify'], standalone_mode=False)\n"
        "assert 'sqlalchemy' not in sys.modules, 'SQLAlchemy was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "4 output rows" in done.stdout
