"""Audits: re-run in a scratch store, compare digests, record the verdict."""

from __future__ import annotations

import cli_tasks

import stardag as sd
from stardag.registry._audits import verdicts


def test_a_deterministic_task_is_reproduced() -> None:
    """Re-running `total` writes the recorded digest again."""
    sd.build(cli_tasks.summed)
    report = sd.audit(cli_tasks.summed)
    assert report.reproduced
    [verdict] = report.verdicts
    assert verdict.verdict == "reproduced"
    assert verdict.recorded_digest == verdict.audit_digest


def test_a_random_task_differs_with_both_digests() -> None:
    """A task returning a random number is reported as not reproducible."""
    sd.build(cli_tasks.random_task)
    recorded = cli_tasks.random_task.target().record()
    assert recorded is not None
    report = sd.audit(cli_tasks.random_task)
    [verdict] = report.verdicts
    assert verdict.verdict == "differs"
    assert verdict.recorded_digest == recorded.digest
    assert verdict.audit_digest not in (None, recorded.digest)


def test_the_audit_leaves_the_real_store_alone() -> None:
    """The recorded output is still the one that loads after an audit."""
    sd.build(cli_tasks.random_task)
    before = cli_tasks.random_task.load()
    sd.audit(cli_tasks.random_task)
    assert cli_tasks.random_task.load() == before


def test_upstream_audits_every_task_of_the_closure() -> None:
    """With upstream, each task from an empty store gets its own verdict."""
    sd.build(cli_tasks.pipeline)
    report = sd.audit(cli_tasks.pipeline, upstream=True)
    audited = {v.task_id: v.verdict for v in report.verdicts}
    assert audited == {
        task.id: "reproduced"
        for task in (cli_tasks.pipeline, cli_tasks.summed, cli_tasks.base, cli_tasks.pipeline.big)
    }


def test_a_task_never_built_is_unrecorded() -> None:
    """Nothing recorded to compare with: the verdict says so."""
    [verdict] = sd.audit(cli_tasks.numbers(limit=11)).verdicts
    assert verdict.verdict == "unrecorded" and verdict.recorded_digest is None


def test_a_failing_task_is_failed() -> None:
    """A task that raises in the scratch store gets a failed verdict with its error."""
    [verdict] = sd.audit(cli_tasks.failing).verdicts
    assert verdict.verdict == "failed" and "always fails" in (verdict.error or "")


def test_verdicts_are_in_the_registry_newest_first() -> None:
    """Each audit adds a verdict per task; the registry returns them newest first."""
    sd.build([cli_tasks.summed, cli_tasks.random_task])
    sd.audit(cli_tasks.summed)
    sd.audit(cli_tasks.random_task)
    found = verdicts()
    assert [v.verdict for v in found] == ["differs", "reproduced"]
    assert [v.verdict for v in verdicts(cli_tasks.summed.id)] == ["reproduced"]


def test_history_shows_audit_verdicts() -> None:
    """`sd.registry.history` lists audits beside runs, with their verdicts."""
    sd.build([cli_tasks.summed, cli_tasks.random_task])
    sd.audit(cli_tasks.summed)
    sd.audit(cli_tasks.random_task)
    [random_audit] = [
        run for run in sd.registry.history(cli_tasks.random_task) if run.outcome == "audited"
    ]
    assert random_audit.verdict == "differs"
    assert random_audit.recorded_digest != random_audit.digest
    entries = sd.registry.history(cli_tasks.summed)
    assert entries[0].outcome == "audited" and entries[0].verdict == "reproduced"
    assert [e.outcome for e in entries[1:]] == ["computed"]
