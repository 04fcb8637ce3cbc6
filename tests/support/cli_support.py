"""Running the `stardag` command line in tests: in-process (typer's runner) or in a shell."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from typer.testing import CliRunner, Result

from stardag.cli import app

TESTS = Path(__file__).parent
BIN = Path(sys.executable).parent


def invoke(*args: str) -> Result:
    """Run `stardag ARGS` in this process through typer's test runner."""
    return CliRunner().invoke(app, list(args))


def shell(
    *args: str, cwd: Path = TESTS, prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """Run `stardag ARGS` as the installed console script, from a fresh shell.

    `prefix` runs it under another command (such as `setpriv ...`).
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    line = shlex.join([*prefix, "stardag", *args])
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
