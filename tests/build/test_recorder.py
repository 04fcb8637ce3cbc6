"""Recording builds: build rows, runs, tasks, edges and outputs, and when not to record."""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import stardag as sd
from stardag.build import FailMode, _recorder

sd.auto_namespace(__name__)


@sd.task
def base(i: int) -> int:
    return i


@sd.task
def plus(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    return a + b


@sd.task
def fails(i: int) -> int:
    raise ValueError(f"no good: {i}")


@sd.task
def after(x: sd.Depends[int]) -> int:
    return x


def test_a_build_records_its_build_row() -> None:
    """The build row names its roots, process, interpreter and how it ended."""
    task = plus(a=base(i=1), b=base(i=2))
    summary = sd.build(task)
    found = sd.registry.build(summary.build_id)
    assert found.status == "succeeded"
    assert found.roots == (task.id,)
    assert (found.pid, found.argv, found.cwd) == (os.getpid(), tuple(sys.argv), os.getcwd())
    assert found.ended is not None and found.ended >= found.started
    assert found.environment.stardag_version == sd.__version__


def test_every_touched_task_gets_a_run() -> None:
    """Computed tasks and the cache hits of a later build each have a run row."""
    task = plus(a=base(i=3), b=base(i=4))
    first = sd.build(task)
    second = sd.build(task)
    assert sd.registry.build(first.build_id).counts == {"computed": 3}
    assert sd.registry.build(second.build_id).counts == {"cached": 1}


def test_a_cached_run_names_the_output_it_reused() -> None:
    """A cache hit's run carries the digest of the output it found."""
    task = base(i=5)
    sd.build(task)
    sd.build(task)
    cached, computed = sd.registry.history(task)
    assert cached.outcome == "cached"
    assert cached.digest == computed.digest is not None


def test_a_cache_hit_refreshes_the_outputs_last_use() -> None:
    """Reusing an output moves its last-used time forward (gc's grace period counts from it)."""
    task = base(i=6)
    sd.build(task)
    before = sd.registry.outputs([task.id])[task.id].last_used
    sd.build(task)
    after_hit = sd.registry.outputs([task.id])[task.id].last_used
    assert before is not None and after_hit is not None and after_hit > before


def test_a_failure_records_its_error_and_skips() -> None:
    """A failed task's run holds the error type, message and traceback; dependents are skipped."""
    task = after(x=fails(i=1))
    assert sd.build(task, fail_mode=FailMode.CONTINUE).status == "failure"
    (failed,) = sd.registry.history(task.x)
    assert failed.outcome == "failed"
    assert failed.error_type == "ValueError"
    assert failed.error_message == "no good: 1"
    assert failed.traceback is not None and "raise ValueError" in failed.traceback
    assert [run.outcome for run in sd.registry.history(task)] == ["skipped"]
    assert sd.registry.builds(limit=1)[0].status == "failed"


def test_a_build_that_raises_before_running_is_failed() -> None:
    """A build stopped by an engine error (a cycle) ends with status failed."""

    class Loop(sd.Task[int]):
        def requires(self) -> Any:
            return Loop()

        def run(self) -> int:
            return 1

    with pytest.raises(sd.DependencyCycleError):
        sd.build(Loop())
    assert sd.registry.builds(limit=1)[0].status == "failed"


def test_task_rows_say_where_the_code_lives() -> None:
    """A task row's module and qualified name import the task again."""
    task = base(i=7)
    sd.build(task)
    node = sd.registry.lineage(task)[task.id]
    assert node.module is not None and node.qualname is not None
    imported = getattr(importlib.import_module(node.module), node.qualname)
    assert imported is type(task)


def test_registry_none_records_nothing_and_says_so_once(
    stardag_home: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """registry=None builds without a registry and logs that once per process."""
    monkeypatch.setattr(sys.modules["stardag.build._run"], "_said_unrecorded", False)
    with caplog.at_level(logging.WARNING, logger="stardag"):
        sd.build(base(i=8), registry=None)
        sd.build(base(i=9), registry=None)
    assert not (stardag_home / "registry.db").exists()
    assert len([r for r in caplog.records if "registry=None" in r.message]) == 1


def test_stardag_no_registry_turns_the_default_off(
    stardag_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STARDAG_NO_REGISTRY=1 builds without creating the default registry."""
    monkeypatch.setenv("STARDAG_NO_REGISTRY", "1")
    sd.build(base(i=10))
    assert not (stardag_home / "registry.db").exists()


def test_a_large_build_is_written_in_many_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """With small batches every run of a few hundred tasks is still recorded."""
    monkeypatch.setattr(_recorder, "BATCH_EVENTS", 25)
    monkeypatch.setattr(_recorder, "FLUSH_SECONDS", 0.001)
    tasks = [base(i=1000 + i) for i in range(300)]
    summary = sd.build(tasks)
    assert sd.registry.build(summary.build_id).counts == {"computed": 300}


def test_the_git_commit_and_dirty_flag_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build in a git working tree records its commit, and whether tracked files changed."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "file.txt").write_text("one")
    _git(repo, "add", "file.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = _git(repo, "rev-parse", "HEAD")
    monkeypatch.chdir(repo)
    clean = sd.build(base(i=11))
    (repo / "file.txt").write_text("two")
    dirty = sd.build(base(i=12))
    assert sd.registry.build(clean.build_id).environment.git_commit == head
    assert sd.registry.build(clean.build_id).environment.git_dirty is False
    assert sd.registry.build(dirty.build_id).environment.git_dirty is True


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


WORKER = """
import json, sys, time
import stardag as sd
from stardag.build import _recorder

_recorder.BATCH_EVENTS = 10  # many short transactions, to contend for the lock
_recorder.FLUSH_SECONDS = 0.001
sd.namespace("overlap", __name__)


@sd.task
def shared(i: int) -> int:
    time.sleep(0.002)
    return i


@sd.task
def own(worker: int, x: sd.Depends[int]) -> int:
    time.sleep(0.002)
    return worker + x


worker = int(sys.argv[1])
tasks = [own(worker=worker, x=shared(i=i)) for i in range(worker * 20, worker * 20 + 80)]
summary = sd.build(tasks)
print(json.dumps({"build_id": summary.build_id, "discovered": summary.discovered}))
"""


def test_four_processes_record_overlapping_builds_into_one_registry(tmp_path: Path) -> None:
    """Four concurrent builds sharing tasks finish without error and every run is recorded."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(k)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "Error" not in err and "Traceback" not in err, err
        results.append(json.loads(out))
    builds = [sd.registry.build(result["build_id"]) for result in results]
    for found, result in zip(builds, results, strict=True):
        assert found.status == "succeeded"
        assert len(found.runs) == result["discovered"] == 160
    assert any(_overlap(a, b) for a in builds for b in builds if a is not b)


def _overlap(a: sd.registry.BuildInfo, b: sd.registry.BuildInfo) -> bool:
    assert a.ended is not None and b.ended is not None
    return a.started < b.ended and b.started < a.ended
