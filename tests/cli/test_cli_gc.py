"""`stardag gc`: never a surprise."""

from __future__ import annotations

import json
import subprocess
import sys

import cli_tasks
import pytest
from cli_support import invoke, shell

import stardag as sd


@pytest.fixture(autouse=True)
def built() -> None:
    """The pipeline and an unrelated task, built and recorded; the pipeline pinned."""
    sd.build(cli_tasks.both)
    sd.registry.pin("report", cli_tasks.pipeline)


def test_a_bare_gc_without_roots_explains_instead_of_guessing() -> None:
    """No pins, no --keep-*, no tasks: one line saying what to give, exit 2."""
    sd.registry.unpin("report")
    result = invoke("gc")
    assert result.exit_code == 2
    assert "--keep-last" in result.stderr and "stardag pin" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_gc_is_a_dry_run_by_default() -> None:
    """It says what it would delete, by family, and what it keeps, by reason."""
    result = invoke("gc", "--grace", "0")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "would delete 2 records and 1 blobs" in out
    assert "cli_tasks.numbers" in out and "pin report" in out and "--apply" in out
    assert cli_tasks.other.complete()


def test_apply_deletes_and_says_so() -> None:
    """--apply deletes the unreachable outputs; the pinned closure still loads."""
    result = invoke("gc", "--grace", "0", "--apply", "--json")
    found = json.loads(result.stdout)
    assert not found["dry_run"] and found["deleted"]["records"]
    assert found["kept"] == {"pin report": 4}
    assert not cli_tasks.other.complete() and cli_tasks.pipeline.load()
    assert invoke("verify").exit_code == 0


def test_keep_last_and_named_tasks_are_roots() -> None:
    """The last build keeps everything it built; a named task keeps itself."""
    found = json.loads(invoke("gc", "--grace", "0", "--keep-last", "1", "--json").stdout)
    assert found["deleted"]["records"] == []
    named = json.loads(invoke("gc", "--grace", "0", cli_tasks.other.id[:12], "--json").stdout)
    assert named["deleted"]["records"] == []


def test_the_grace_period_defaults_to_an_hour() -> None:
    """Right after a build nothing is old enough to delete."""
    found = json.loads(invoke("gc", "--json").stdout)
    assert found["deleted"]["records"] == [] and found["grace_seconds"] == 3600


def test_why_prints_the_chain_from_a_root() -> None:
    """--why a task or a blob: the pin, then each task on the way down."""
    task = invoke("gc", "--grace", "0", "--why", "cli_tasks:base")
    assert task.stdout.splitlines()[0].endswith("pin report")
    record = cli_tasks.base.target().record()
    assert record is not None
    blob = invoke("gc", "--grace", "0", "--why", record.digest)
    assert blob.stdout.splitlines()[-1] == f"  needs blob {record.digest}"


def test_gc_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """STARDAG_GC_KEEP_LAST and STARDAG_GC_GRACE stand in for the options."""
    sd.registry.unpin("report")
    monkeypatch.setenv("STARDAG_GC_KEEP_LAST", "1")
    monkeypatch.setenv("STARDAG_GC_GRACE", "0s")
    found = json.loads(invoke("gc", "--json").stdout)
    assert found["grace_seconds"] == 0 and found["deleted"]["records"] == []


def test_gc_from_a_fresh_shell() -> None:
    """The console script runs a dry run, then applies it."""
    dry = shell("gc", "--grace", "0")
    assert dry.returncode == 0 and "would delete" in dry.stdout, dry.stderr
    applied = shell("gc", "--grace", "0", "--apply")
    assert applied.returncode == 0 and "deleted 2 records" in applied.stdout


def test_a_dry_run_reads_a_sqlite_registry_without_importing_sqlalchemy() -> None:
    """`stardag gc` (no names, no --apply) reads a plain SQLite file through `sqlite3`: a
    fresh process does not pay for importing SQLAlchemy (~0.3 s)."""
    code = (
        "import sys\n"
        "from stardag.cli import app\n"
        "app(['gc', '--keep-last', '1'], standalone_mode=False)\n"
        "assert 'sqlalchemy' not in sys.modules, 'SQLAlchemy was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "pin report" in done.stdout
