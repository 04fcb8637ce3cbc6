"""`stardag history`, `builds` and `explain`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import cli_tasks
import pytest
from cli_support import invoke, shell

import stardag as sd


def test_history_lists_runs_newest_first_with_audit_verdicts() -> None:
    """A computed run, then a cache hit, then an audit: all in the task's history."""
    sd.build(cli_tasks.summed)
    sd.build(cli_tasks.summed)
    assert invoke("audit", "cli_tasks:summed").exit_code == 0
    result = invoke("history", "cli_tasks:summed", "--json")
    found = json.loads(result.stdout)
    assert [r["outcome"] for r in found["runs"]] == ["cached", "computed"]
    assert [a["verdict"] for a in found["audits"]] == ["reproduced"]
    text = invoke("history", "cli_tasks:summed").stdout
    assert "cached" in text and "computed" in text and "reproduced" in text


def test_history_without_a_task_lists_every_run() -> None:
    """No TASK: the newest runs of every task."""
    sd.build(cli_tasks.pipeline)
    found = json.loads(invoke("history", "--json", "--limit", "3").stdout)
    assert len(found["runs"]) == 3 and found["task_id"] is None


def test_builds_lists_builds_and_one_build_its_runs() -> None:
    """Two builds, newest first; a build prefix shows its runs."""
    sd.build(cli_tasks.summed)
    sd.build(cli_tasks.other)
    found = json.loads(invoke("builds", "--json").stdout)
    assert len(found) == 2 and found[0]["counts"] == {"computed": 2}
    one = invoke("builds", found[1]["id"][:8])
    assert one.exit_code == 0 and "cli_tasks.total" in one.stdout and "succeeded" in one.stdout


def test_explain_says_why_a_task_would_run() -> None:
    """A new parameter value: would run, and the nearest previous run differs in it."""
    sd.build(cli_tasks.other)
    result = invoke("explain", "cli_tasks:summed")
    assert result.exit_code == 0, result.output
    assert "would run" in result.stdout
    assert "upstream values" in result.stdout


def test_explain_of_a_cache_hit() -> None:
    """A built task is complete, with the build that wrote it."""
    sd.build(cli_tasks.summed)
    found = json.loads(invoke("explain", cli_tasks.summed.id[:12], "--json").stdout)
    assert found["complete"] is True and found["task_id"] == cli_tasks.summed.id


def test_history_builds_and_explain_from_a_fresh_shell() -> None:
    """The console script answers all three."""
    sd.build(cli_tasks.summed)
    assert "computed" in shell("history", cli_tasks.summed.id[:8]).stdout
    assert "succeeded" in shell("builds").stdout
    assert "complete" in shell("explain", "cli_tasks:summed").stdout


def test_audit_times_in_json_are_iso_8601() -> None:
    """`audited` reads like every other time in --json: ISO 8601 UTC, not epoch seconds."""
    sd.build(cli_tasks.summed)
    audit = json.loads(invoke("audit", "cli_tasks:summed", "--json").stdout)
    history = json.loads(invoke("history", "cli_tasks:summed", "--json").stdout)
    status = json.loads(invoke("status", "cli_tasks:summed", "--json").stdout)
    times = [
        audit["verdicts"][0]["audited"],
        history["audits"][0]["audited"],
        status["last_audit"]["audited"],
    ]
    for each in times:
        assert isinstance(each, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", each)


def test_builds_with_something_not_a_build_id() -> None:
    """`builds zzzz`: one line saying it wants a build id, exit 2."""
    sd.build(cli_tasks.summed)
    result = invoke("builds", "zzzz")
    assert result.exit_code == 2
    assert "is not a build id" in result.stderr and "task id" not in result.stderr


def test_id_prefixes_are_case_insensitive() -> None:
    """An id prefix in capitals names the same task and build as in lowercase."""
    sd.build(cli_tasks.summed)
    upper = cli_tasks.summed.id[:10].upper()
    for command in (["status"], ["show"], ["lineage"], ["history"], ["cat"]):
        result = invoke(*command, upper)
        assert result.exit_code == 0, (command, result.output)
    build_id = sd.registry.builds()[0].id
    assert invoke("builds", build_id[:8].upper()).exit_code == 0


def test_a_failed_run_shows_its_error_and_traceback() -> None:
    """history TASK and show TASK print the error and the traceback, not only in --json."""
    with pytest.raises(ValueError, match="always fails"):
        sd.build(cli_tasks.failing)
    for command in ("history", "show"):
        text = invoke(command, "cli_tasks:failing").stdout
        assert "ValueError: this task always fails" in text, (command, text)
        assert "Traceback (most recent call last)" in text and "in broken" in text
    everything = invoke("history").stdout
    assert "ValueError: this task always fails" in everything
    assert "this task always fails" in invoke("status", "cli_tasks:failing").stdout


def test_a_build_whose_process_died_shows_as_abandoned() -> None:
    """Running while its process lives; "abandoned" in `stardag builds` once it is killed."""
    code = "import cli_tasks, stardag as sd; sd.build(cli_tasks.sleepy(seconds=120))"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=cli_tasks_dir())
    try:
        deadline = time.monotonic() + 60
        while not _running_builds() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _running_builds(), "the build never started"
        assert json.loads(invoke("builds", "--json").stdout)[0]["status"] == "running"
    finally:
        child.kill()
        child.wait()
    found = json.loads(invoke("builds", "--json").stdout)[0]
    assert found["status"] == "abandoned" and found["pid"] == child.pid
    assert "abandoned" in invoke("builds").stdout


def cli_tasks_dir() -> str:
    return os.path.dirname(cli_tasks.__file__)


def _running_builds() -> list[sd.registry.BuildInfo]:
    if not os.path.exists(sd.registry.default_url().removeprefix("sqlite:///")):
        return []
    return [b for b in sd.registry.builds() if b.status == "running"]
