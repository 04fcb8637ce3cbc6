"""The recording process: a large build's rows are made and written in a process of its own.

`PROCESS_AT` is lowered so that small builds take that path; the same builds recorded
by the writer thread (`STARDAG_RECORDING_PROCESS=0`) are the reference.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import stardag as sd
from stardag.build import FailMode, _recordproc

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


class Grows(sd.Task[int]):
    """Yields a dynamic dependency, then adds its own number to it."""

    n: int

    def run(self) -> Any:
        extra = base(i=100 + self.n)
        yield extra
        self.target().save(extra.load() + self.n)


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> list[_recordproc.RecordingProcess]:
    """Every build records through a process; the list holds each one started."""
    started: list[_recordproc.RecordingProcess] = []
    original = _recordproc.RecordingProcess.spawn.__func__  # type: ignore[attr-defined]

    def spawn(cls: type, registry: Any, build_id: str) -> _recordproc.RecordingProcess:
        made = original(cls, registry, build_id)
        started.append(made)
        return made

    monkeypatch.setattr(_recordproc.RecordingProcess, "spawn", classmethod(spawn))
    monkeypatch.setattr(_recordproc, "PROCESS_AT", 1)
    return started


def _first(processes: list[_recordproc.RecordingProcess]) -> _recordproc.RecordingProcess:
    """The build's recording process, once its writer thread has handed over to it."""
    for _ in range(1200):
        if processes and processes[0].begun:
            return processes[0]
        threading.Event().wait(0.05)
    raise AssertionError("no recording process started")


def _builds() -> list[Any]:
    """Computed, failed, skipped, dynamic and (on the second build) cached tasks."""
    summaries = []
    for _ in range(2):
        roots = [plus(a=base(i=1), b=base(i=2)), after(x=fails(i=1)), Grows(n=3)]
        summaries.append(sd.build(roots, fail_mode=FailMode.CONTINUE, raise_on_failure=False))
    return summaries


def _rows(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The registry's rows without what differs between two homes or two runs."""
    with sqlite3.connect(home / "registry.db") as conn:
        queries = {
            "builds": "SELECT status FROM builds ORDER BY started",
            "tasks": "SELECT id, namespace, name, version, spec, module, qualname, "
            "fingerprint FROM tasks ORDER BY id",
            "edges": "SELECT task_id, dep_id, kind FROM edges ORDER BY 1, 2, 3",
            "links": "SELECT t.id, d.id, kind FROM links JOIN task_keys t ON t.key = task_key "
            "JOIN task_keys d ON d.key = dep_key ORDER BY 1, 2, 3",
            "runs": "SELECT b.started, task_id, outcome, error_type, error_message, digest, "
            "size_raw, fingerprint, executor, runs.started <= runs.ended FROM runs "
            "JOIN builds b ON b.id = build_id ORDER BY 1, 2",
            "outputs": "SELECT task_id, digest, serializer, size_raw, size_stored, "
            "build_id IS NOT NULL, created <= last_used FROM outputs ORDER BY 1, 2",
        }
        found = {name: conn.execute(sql).fetchall() for name, sql in queries.items()}
    builds = sorted({row[0] for row in found["runs"]})
    found["runs"] = [(builds.index(row[0]), *row[1:]) for row in found["runs"]]
    return found


def test_a_build_records_the_same_rows_through_a_process_as_in_its_thread(
    processes: list[_recordproc.RecordingProcess],
    stardag_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _builds()
    assert len(processes) == 2  # each build handed its rows to a process
    through_process = _rows(stardag_home)
    in_thread = stardag_home.parent / "in-thread"
    monkeypatch.setenv("STARDAG_HOME", str(in_thread))
    monkeypatch.setenv(_recordproc.ENV_VAR, "0")
    _builds()
    assert len(processes) == 2
    assert _rows(in_thread) == through_process
    second = sorted(r[2] for r in through_process["runs"] if r[0] == 1)
    assert second == ["cached", "cached", "failed", "skipped"]
    assert any(kind == "dynamic" for *_, kind in through_process["links"])


def test_the_recording_process_is_out_of_reach_of_ctrl_c(
    processes: list[_recordproc.RecordingProcess],
) -> None:
    """A terminal's Ctrl-C goes to its foreground process group: not to the recorder."""
    seen: list[tuple[int, int]] = []

    @sd.task
    def looks(i: int) -> int:
        child = _first(processes)._process.pid
        seen.append((os.getpgid(child), os.getsid(child)))
        return i

    sd.build(looks(i=1))
    ((group, session),) = seen
    assert group != os.getpgid(0) and session != os.getsid(0)
    assert processes[0]._process.returncode == 0  # and it ended with the build


def test_a_recording_process_that_dies_fails_the_build_and_loses_no_output(
    processes: list[_recordproc.RecordingProcess],
) -> None:
    """The build finishes its tasks, then says the recording broke and how to restore it."""
    killed = threading.Event()

    @sd.task
    def kills(i: int) -> int:
        if not killed.is_set():
            process = _first(processes)._process
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed.set()
        return i

    @sd.task
    def later(x: sd.Depends[int]) -> int:
        return x + 1

    root = later(x=kills(i=7))
    with pytest.raises(sd.RegistryError, match=r"process recording build .* failed") as info:
        sd.build(root)
    assert "sd.registry.reindex" in str(info.value)
    assert root.load() == 8  # the outputs are in the store
    sd.registry.reindex()
    assert set(sd.registry.lineage(root).nodes) == {root.id, root.x.id}


def test_a_recording_process_whose_build_went_away_stops(tmp_path: Path) -> None:
    """EOF on its pipe (the building process was killed): it writes what came, then ends."""
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-m", "stardag.build._recordproc"],
        input=b"",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0 and child.stdout == _recordproc.READY


def test_a_recording_process_that_dies_before_it_is_ready_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The writer thread records the whole build, without an error."""
    import subprocess
    import sys

    monkeypatch.setattr(_recordproc, "PROCESS_AT", 1)
    spawned: list[_recordproc.RecordingProcess] = []

    def spawn(cls: type, registry: Any, build_id: str) -> _recordproc.RecordingProcess:
        pipe = subprocess.PIPE
        dies = subprocess.Popen([sys.executable, "-c", "pass"], stdin=pipe, stdout=pipe)
        spawned.append(_recordproc.RecordingProcess(dies, registry, build_id))
        return spawned[-1]

    monkeypatch.setattr(_recordproc.RecordingProcess, "spawn", classmethod(spawn))

    @sd.task
    def waits(i: int) -> int:
        while not spawned or spawned[0]._process.poll() is None:
            threading.Event().wait(0.05)
        threading.Event().wait(0.6)  # the writer thread looks again (every 0.25 s)
        return i

    roots = [plus(a=waits(i=1), b=base(i=2)), base(i=3)]
    summary = sd.build(roots)
    assert sd.registry.build(summary.build_id).counts == {"computed": 4}
    assert not spawned[0].begun
