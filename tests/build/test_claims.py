"""Claims: builders sharing a store and a registry compute each task once (SQLite, PostgreSQL)."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import invoke
from sqlalchemy import text

import stardag as sd
from stardag.registry import _claims

WORKER = Path(__file__).parents[1] / "support" / "claim_worker.py"


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(
    request: pytest.FixtureRequest, tmp_path: Path, stardag_home: Path
) -> Iterator[dict[str, str]]:
    """The environment of builders sharing one store and one registry (SQLite or PostgreSQL)."""
    (tmp_path / "runs").mkdir()
    env = {
        **os.environ,
        "CLAIMS_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(sys.path),
        "STARDAG_HOME": str(stardag_home),
    }
    if request.param == "postgresql":
        env["STARDAG_REGISTRY_URL"] = request.getfixturevalue("postgres_url")
    yield env


def _start(env: dict[str, str], count: int = 4) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(k)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(count)
    ]


def _runs(env: dict[str, str], pid: int | None = None) -> collections.Counter[str]:
    """How often each task ran (only in process `pid`, if given)."""
    runs = Path(env["CLAIMS_DIR"]) / "runs"
    names = [path.name.split(".") for path in runs.iterdir()]
    return collections.Counter(n[0] for n in names if pid is None or n[1] == str(pid))


def _finish(procs: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _computed_by(env: dict[str, str]) -> collections.Counter[str]:
    registry = sd.registry.Registry(env.get("STARDAG_REGISTRY_URL") or sd.registry.default_url())
    rows = registry.read(
        lambda conn: (
            conn.execute(text("SELECT task_id FROM runs WHERE outcome = 'computed'"))
            .scalars()
            .all()
        )
    )
    registry.close()
    return collections.Counter(rows)


def test_four_builders_compute_each_task_once(shared: dict[str, str]) -> None:
    """Four builders of overlapping DAGs: every task runs once and every build succeeds."""
    procs = _start(shared)
    (Path(shared["CLAIMS_DIR"]) / "go").write_text("")
    results = _finish(procs)
    runs = _runs(shared)
    assert len(runs) > 200
    assert {name: n for name, n in runs.items() if n != 1} == {}
    assert sum(int(str(r["ran"])) for r in results) == sum(runs.values())
    computed = _computed_by(shared)  # the registry shows one computing run per task
    assert set(computed.values()) == {1} and len(computed) == len(runs)


def test_a_killed_builders_task_is_taken_over_and_run_once_more(shared: dict[str, str]) -> None:
    """SIGKILL the builder running a task: its claim expires, one other builder runs it again."""
    shared["CLAIMS_HANG"] = "1"
    procs = _start(shared)
    signal_file = Path(shared["CLAIMS_DIR"]) / "hanging"
    (Path(shared["CLAIMS_DIR"]) / "go").write_text("")
    deadline = time.monotonic() + 120
    while not signal_file.exists():
        assert time.monotonic() < deadline, "no builder started the slow task"
        time.sleep(0.02)
    pid = int(signal_file.read_text())
    victim = next(p for p in procs if p.pid == pid)
    os.kill(pid, signal.SIGKILL)
    victim.communicate(timeout=30)  # reaps it and closes its pipes
    _finish([p for p in procs if p is not victim])
    runs = _runs(shared)
    assert runs["slow-0"] == 2  # the killed run, and the one that took over
    # Whatever else the killed builder had in flight ran once more too; nothing else did.
    again = {name for name, n in runs.items() if n != 1}
    assert {runs[name] for name in again} == {2}
    assert again <= set(_runs(shared, pid=pid))
    os.environ["STARDAG_REGISTRY_URL"] = shared.get("STARDAG_REGISTRY_URL", "")
    try:
        verified = invoke("verify")
    finally:
        os.environ.pop("STARDAG_REGISTRY_URL")
    assert verified.exit_code == 0, verified.output


@sd.task
def explode(x: int) -> int:
    raise ValueError(f"boom {x}")


def test_a_failed_task_releases_its_claim_at_once_with_its_error(
    shared: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task that fails leaves its claim released, the error on it; the next build retries."""
    if "STARDAG_REGISTRY_URL" in shared:
        monkeypatch.setenv("STARDAG_REGISTRY_URL", shared["STARDAG_REGISTRY_URL"])
    for attempt in (1, 2):
        with pytest.raises(ValueError, match="boom 7"):
            sd.build(explode(x=7))
        registry = sd.registry.open()
        rows = registry.read(lambda conn: _claims.holders(conn))
        assert [(r["task_id"], r["state"], r["generation"]) for r in rows] == [
            (explode(x=7).id, "failed", attempt)
        ]
        assert "ValueError: boom 7" in rows[0]["error"]
        assert rows[0]["expires"] <= time.time() + 1
