"""`stardag audit`: reproduced or not, recorded either way."""

from __future__ import annotations

import json

import cli_tasks
from cli_support import invoke, shell

import stardag as sd
from stardag.registry._audits import verdicts


def test_a_deterministic_task_reproduces_with_exit_code_0() -> None:
    """`total` re-run gives the same digest."""
    sd.build(cli_tasks.summed)
    result = invoke("audit", cli_tasks.summed.id[:12])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("reproduced")


def test_a_random_task_differs_with_exit_code_1() -> None:
    """`noise` re-run gives another digest: both are printed."""
    sd.build(cli_tasks.random_task)
    result = invoke("audit", "cli_tasks:random_task", "--json")
    assert result.exit_code == 1
    [verdict] = json.loads(result.stdout)["verdicts"]
    assert verdict["verdict"] == "differs"
    assert verdict["recorded_digest"] != verdict["audit_digest"]


def test_upstream_audits_the_closure() -> None:
    """--upstream gives a verdict for every task of the pipeline."""
    sd.build(cli_tasks.pipeline)
    found = json.loads(invoke("audit", "cli_tasks:pipeline", "--upstream", "--json").stdout)
    assert len(found["verdicts"]) == 4
    assert {v["verdict"] for v in found["verdicts"]} == {"reproduced"}


def test_audit_from_a_fresh_shell_rebuilds_the_task_from_the_registry() -> None:
    """Named by id, the task's code is imported from the module the registry recorded."""
    sd.build(cli_tasks.random_task)
    done = shell("audit", cli_tasks.random_task.id)
    assert done.returncode == 1 and done.stdout.startswith("differs"), done.stderr
    assert [v.verdict for v in verdicts(cli_tasks.random_task.id)] == ["differs"]
