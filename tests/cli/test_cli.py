"""The `stardag` command line: the version command and help (the rest in test_cli_*.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main
from cli_support import invoke
from typer.testing import CliRunner

import stardag as sd
from stardag.cli import app


def test_version_matches_the_package() -> None:
    """`stardag version` prints `sd.__version__`."""
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == sd.__version__


def test_version_from_a_fresh_shell() -> None:
    """The installed console script answers too."""
    out = subprocess.run(
        [sys.executable, "-m", "stardag", "version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == sd.__version__


def _commands() -> list[list[str]]:
    group = typer.main.get_command(app)
    found: list[list[str]] = []
    for name, command in getattr(group, "commands", {}).items():
        subcommands = getattr(command, "commands", None)
        if subcommands:
            found.extend([name, sub] for sub in subcommands)
        else:
            found.append([name])
    return found


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_help_metavars_read_naturally(command: list[str]) -> None:
    """Usage and options read `TASK`, `[TASK]...`, `--depth N`: no `{TASK}` or `<int range>`."""
    text = invoke(*command, "--help").stdout
    for typed in ("<str>", "<int", "<list", "<float", "{", "[[", "]...]..."):
        assert typed not in text, (command, typed, text)
