"""Two machines share one S3 remote: the second builds the same DAG computing nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import remote_tasks

TESTS = Path(__file__).parents[1] / "support"


def _run(home: Path, remote: str, s3: dict[str, Any], *argv: str) -> str:
    """Run a Python command line in a fresh process with its own STARDAG_HOME; its stdout."""
    env = {
        **os.environ,
        "STARDAG_HOME": str(home),
        "STARDAG_REMOTE": remote,
        "FSSPEC_S3": json.dumps(s3),  # fsspec's config from the environment
        "PYTHONPATH": str(TESTS),
    }
    env.pop("STARDAG_TARGET_ROOTS", None)
    done = subprocess.run(
        [sys.executable, *argv], cwd=TESTS, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _machine(home: Path, remote: str, s3: dict[str, Any], *args: str) -> dict[str, Any]:
    """Run `remote_tasks.main` on one machine; what it printed."""
    out = _run(home, remote, s3, "-c", "import remote_tasks; remote_tasks.main()", *args)
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_second_machine_reads_the_whole_dag_from_the_remote(
    tmp_path: Path, s3_options: dict[str, Any], s3_url: str
) -> None:
    """Machine B, trusting A's key, computes nothing, loads equal values and knows the
    full lineage."""
    first = _machine(tmp_path / "a", s3_url, s3_options, "push")
    assert first["ran"] == 4 and first["pushed"] == 4
    key = _run(tmp_path / "a", s3_url, s3_options, "-m", "stardag", "remote", "key").strip()
    _run(tmp_path / "b", s3_url, s3_options, "-m", "stardag", "remote", "trust", key)
    second = _machine(tmp_path / "b", s3_url, s3_options, "lineage")
    assert second["ran"] == 0 and second["remote_hits"] == 1
    assert second["value"] == first["value"]
    root = remote_tasks.dag()
    expected = {root.id, root.plain.id, root.big.id, root.plain.values.id}
    assert set(second["lineage"]) == expected
    assert not (tmp_path / "a" / "store").samefile(tmp_path / "b" / "store")
