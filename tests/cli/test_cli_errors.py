"""Bad input: one line on stderr, exit code 2, never a traceback."""

from __future__ import annotations

import itertools
import os

import cli_tasks
import pytest
from cli_support import invoke, shell
from typer.testing import Result

import stardag as sd

UNKNOWN = "f" * 64
TASK_COMMANDS = [
    ["status"],
    ["show"],
    ["cat"],
    ["lineage"],
    ["history"],
    ["explain"],
    ["audit"],
    ["pin", "name"],
]


def _one_line_error(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stardag: error: "), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0]


@pytest.fixture
def built() -> None:
    """Something built, so the registry exists."""
    sd.build(cli_tasks.summed)


@pytest.mark.usefixtures("built")
@pytest.mark.parametrize("command", TASK_COMMANDS, ids=lambda c: c[0])
def test_an_unknown_task_id(command: list[str]) -> None:
    """An id nothing records."""
    _one_line_error(invoke(*command, UNKNOWN), UNKNOWN[:12])


@pytest.mark.parametrize("command", TASK_COMMANDS, ids=lambda c: c[0])
def test_an_ambiguous_prefix(command: list[str]) -> None:
    """A prefix two recorded tasks share: the candidates are named."""
    tasks = [cli_tasks.numbers(limit=i) for i in range(60)]
    sd.build(tasks)
    ids = sorted(t.id for t in tasks)
    prefix = next(a[:2] for a, b in itertools.pairwise(ids) if a[:2] == b[:2])
    _one_line_error(invoke(*command, prefix), "prefix", prefix)


@pytest.mark.usefixtures("built")
@pytest.mark.parametrize(
    "reference", ["cli_tasks:", "cli_tasks:missing", "no_such_module:task", "cli_tasks:not_a_task"]
)
@pytest.mark.parametrize("command", [["status"], ["build"], ["audit"]], ids=lambda c: c[0])
def test_a_malformed_module_attr(command: list[str], reference: str) -> None:
    """Not importable, not there, or not a task."""
    _one_line_error(invoke(*command, reference))


@pytest.mark.parametrize(
    "command",
    [*[[*c, "0123abcd"] for c in TASK_COMMANDS if c[0] != "cat"], ["builds"], ["pins"], ["gc"]],
    ids=lambda c: c[0],
)
def test_a_registry_that_does_not_exist_yet(command: list[str]) -> None:
    """Nothing built yet: each command says so, and creates no registry file."""
    _one_line_error(invoke(*command), "no registry")
    assert not os.path.exists(sd.registry.default_url().removeprefix("sqlite:///"))


@pytest.mark.usefixtures("built")
def test_bad_durations_and_choices() -> None:
    """A duration that is not one, an unknown format: exit 2."""
    _one_line_error(invoke("gc", "--keep-since", "soon"), "--keep-since")
    assert invoke("lineage", "cli_tasks:summed", "--format", "png").exit_code == 2


@pytest.mark.usefixtures("built")
def test_bad_input_from_a_fresh_shell() -> None:
    """The console script: one line, exit 2, for each kind of bad input."""
    for args in (["status", UNKNOWN], ["status", "cli_tasks:"], ["show", "not hex"]):
        done = shell(*args)
        assert done.returncode == 2, done
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_no_registry_from_a_fresh_shell() -> None:
    """Nothing built: the console script says so in one line."""
    done = shell("history")
    assert done.returncode == 2 and "no registry" in done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.usefixtures("built")
def test_a_malformed_target_roots_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """STARDAG_TARGET_ROOTS that is not a JSON object: one line naming it, exit 2."""
    monkeypatch.setenv("STARDAG_TARGET_ROOTS", "/just/a/path")
    _one_line_error(invoke("status", "cli_tasks:summed"), "STARDAG_TARGET_ROOTS")


def test_removing_a_remote_that_is_not_configured() -> None:
    """`remote remove NOSUCH`: one line that names it, exit 2."""
    _one_line_error(invoke("remote", "remove", "NOSUCH"), "NOSUCH")
