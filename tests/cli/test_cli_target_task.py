"""`status`, `show` and `explain` by id ask a TargetTask itself, as a build does."""

from __future__ import annotations

import json

import pytest
import target_tasks
from cli_support import invoke

import stardag as sd


@pytest.fixture(autouse=True)
def built() -> None:
    """The report, built (complete: its file exists) and recorded."""
    sd.build(target_tasks.report)
    assert target_tasks.report.complete()


def test_status_of_a_built_target_task_is_complete() -> None:
    """`stardag status ID` says complete, though the store holds no output of it."""
    result = invoke("status", target_tasks.report.id[:12], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["complete"] is True
    assert "not complete" not in invoke("status", target_tasks.report.id).stdout


def test_show_of_a_built_target_task_is_complete() -> None:
    """`stardag show ID` says complete instead of 'no output in the store'."""
    result = invoke("show", target_tasks.report.id)
    assert result.exit_code == 0, result.output
    assert "complete" in result.stdout and "no output in the store" not in result.stdout
    assert json.loads(invoke("show", target_tasks.report.id, "--json").stdout)["complete"]


def test_explain_of_a_built_target_task_is_complete() -> None:
    """`stardag explain ID` reports a cache hit, not a run."""
    result = invoke("explain", target_tasks.report.id, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["complete"] is True
    assert "would run" not in invoke("explain", target_tasks.report.id).stdout
