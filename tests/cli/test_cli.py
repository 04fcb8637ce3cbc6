"""The `stardag` command line: the version command (the rest in tests/test_cli_*.py)."""

from __future__ import annotations

import subprocess
import sys

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
