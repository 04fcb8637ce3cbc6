"""`stardag build` as the released stardag has it (issue 12): several references,
callables and task classes with `--param`, `--dry-run` and `--json`."""

from __future__ import annotations

import json

import compat_cli_tasks as tasks
from cli_support import invoke


def test_build_takes_several_references_and_callables() -> None:
    """Each reference may be a task, a list, or a function returning tasks."""
    result = invoke("build", "compat_cli_tasks:plain", "compat_cli_tasks:make_tasks")
    assert result.exit_code == 0, result.output
    assert tasks.plain.load() == "HELLO" and tasks.word(text="b").load() == "b"


def test_build_makes_a_task_class_from_params() -> None:
    """--param key=value (JSON values) instantiates a task class."""
    result = invoke(
        "build", "compat_cli_tasks:Power", "--param", "base=2", "--param", "exponent=10"
    )
    assert result.exit_code == 0, result.output
    assert tasks.Power(base=2, exponent=10).load() == 1024


def test_bad_params_are_one_line_and_exit_2() -> None:
    """A parameter that does not validate, or --param with no class, is bad input."""
    bad = invoke("build", "compat_cli_tasks:Power", "--param", "base=two")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "Power" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    stray = invoke("build", "compat_cli_tasks:plain", "--param", "x=1")
    assert stray.exit_code == 2 and "task class" in stray.stderr
    malformed = invoke("build", "compat_cli_tasks:Power", "--param", "base")
    assert malformed.exit_code == 2 and "key=value" in malformed.stderr
    wrong = invoke("build", "compat_cli_tasks:not_a_task")
    assert wrong.exit_code == 2 and "not a task" in wrong.stderr


def test_dry_run_prints_the_plan_and_runs_nothing() -> None:
    """--dry-run: what would run and what is complete; nothing is built."""
    invoke("build", "compat_cli_tasks:make_tasks")  # word(a) and word(b) complete
    result = invoke("build", "compat_cli_tasks:plain", "compat_cli_tasks:make_tasks", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would run" in result.stdout and "shout" in result.stdout
    assert "4 task(s): 2 would run, 2 already complete" in result.stdout
    assert not tasks.plain.complete()
    as_json = invoke("build", "compat_cli_tasks:plain", "--dry-run", "--json")
    plan = json.loads(as_json.stdout)
    assert plan["to_run"] == 2 and plan["roots"] == [tasks.plain.id]
    assert {row["task"] for row in plan["tasks"]} == {
        "compat_cli_tasks.shout",
        "compat_cli_tasks.word",
    }
    assert not tasks.plain.complete()


def test_json_prints_the_summary() -> None:
    """--json: the build's summary (status, task_count, failures) as JSON on stdout."""
    result = invoke("build", "compat_cli_tasks:plain", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "success"
    assert summary["task_count"]["succeeded"] == 2 and summary["failures"] == []
    again = json.loads(invoke("build", "compat_cli_tasks:plain", "--json").stdout)
    assert again["task_count"]["previously_completed"] == 1
