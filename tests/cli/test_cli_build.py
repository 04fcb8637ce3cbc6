"""`stardag build` and `sd.build(..., progress=True)`."""

from __future__ import annotations

import cli_tasks
import pytest
from cli_support import invoke, shell

import stardag as sd


def test_build_runs_the_task_and_ends_with_a_summary() -> None:
    """A successful build exits 0, prints one line per task off a terminal, then a summary."""
    result = invoke("build", "cli_tasks:pipeline", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "build succeeded" in result.stdout and "4 ran" in result.stdout
    assert result.stderr.count("  done ") == 4
    assert cli_tasks.pipeline.complete()


def test_build_accepts_a_list_of_tasks() -> None:
    """`module:attr` naming a list builds each task in it."""
    result = invoke("build", "cli_tasks:both")
    assert result.exit_code == 0, result.output
    assert cli_tasks.pipeline.complete() and cli_tasks.other.complete()


def test_a_failed_task_fails_the_build_with_exit_code_1() -> None:
    """Fail fast: the task's error and traceback are shown, and the exit code is 1; the
    traceback is the task's own, not the build's and asyncio's frames that re-raised it."""
    result = invoke("build", "cli_tasks:failing")
    assert result.exit_code == 1
    assert "this task always fails" in result.stderr
    assert "failed broken" in result.stdout and "build failed" in result.stdout

    trace = result.stderr[result.stderr.index("Traceback (most recent call last)") :]
    frames = [line for line in trace.splitlines() if line.startswith("  File ")]
    assert "in broken" in frames[-1]  # it ends where the task raised
    assert not any("cli/" in f or "asyncio" in f or "_run.py" in f for f in frames), trace


def test_continue_builds_every_branch_that_can_be_built() -> None:
    """--fail-mode continue: the failure is reported, the other branches are built."""
    result = invoke("build", "cli_tasks:mixed", "--fail-mode", "continue")
    assert result.exit_code == 1
    assert "failed broken" in result.stdout
    assert cli_tasks.other.complete()


def test_a_live_display_is_drawn_on_request() -> None:
    """--progress forces the live display (rich) even off a terminal."""
    result = invoke("build", "cli_tasks:summed", "--progress")
    assert result.exit_code == 0
    assert "stardag build" in result.stderr and "2/2 complete" in result.stderr


def test_sd_build_shows_progress_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    """`sd.build(..., progress=True)` reports on stderr (plain lines off a terminal)."""
    sd.build(cli_tasks.summed, progress=True)
    err = capsys.readouterr().err
    assert err.count("  done ") == 2 and "2/2 complete" in err


def test_build_from_a_fresh_shell() -> None:
    """The console script builds; a second run finds everything cached."""
    first = shell("build", "cli_tasks:summed")
    assert first.returncode == 0, first.stderr
    second = shell("build", "cli_tasks:summed")
    assert second.returncode == 0 and "1 already complete" in second.stdout


def test_quiet_prints_nothing_but_errors() -> None:
    """--quiet: a build that succeeds prints nothing; a failing one only its errors, on stderr."""
    result = invoke("build", "cli_tasks:summed", "--quiet")
    assert result.exit_code == 0 and cli_tasks.summed.complete()
    assert (result.stdout, result.stderr) == ("", "")
    failed = invoke("build", "cli_tasks:failing", "-q")
    assert failed.exit_code == 1 and failed.stdout == ""
    assert "this task always fails" in failed.stderr and "  done " not in failed.stderr


def test_no_progress_prints_the_summary_only() -> None:
    """--no-progress: no line per task and no build lines, just the summary."""
    result = invoke("build", "cli_tasks:summed", "--no-progress")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout.startswith("build succeeded") and result.stdout.count("\n") == 1


@pytest.mark.parametrize(
    ("setting", "reference", "words"),
    [
        ({"STARDAG_TARGET_ROOTS": "{not json"}, "cli_tasks:summed", "not valid JSON"),
        ({"STARDAG_TARGET_ROOTS": '["a list"]'}, "cli_tasks:summed", "JSON object"),
        ({}, "cli_tasks:misplaced", "'elsewhere'"),
    ],
    ids=["not-json", "not-an-object", "unconfigured-root-key"],
)
def test_bad_settings_are_one_line_exit_2_and_no_build_recorded(
    monkeypatch: pytest.MonkeyPatch, setting: dict[str, str], reference: str, words: str
) -> None:
    """A malformed STARDAG_TARGET_ROOTS, an unconfigured root key: one line, exit 2, no build."""
    sd.build(cli_tasks.base)  # the registry exists, with one build
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    result = invoke("build", reference)
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("stardag: error: ") and words in lines[0]
    monkeypatch.delenv("STARDAG_TARGET_ROOTS", raising=False)
    assert len(sd.registry.builds()) == 1


def test_an_unconfigured_root_key_records_no_build_from_the_api() -> None:
    """sd.build raises UnknownRootKeyError (a ConfigError) and leaves no failed build behind."""
    sd.build(cli_tasks.base)
    with pytest.raises(sd.ConfigError, match="elsewhere"):
        sd.build(cli_tasks.misplaced)
    assert [b.status for b in sd.registry.builds()] == ["succeeded"]
