"""Installing the checkout: `pip install -e .` (which scripts/demo runs) is quiet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EDITABLE = """
import sys
from setuptools import build_meta
build_meta.build_editable(sys.argv[1])
"""


def test_an_editable_build_shows_no_setuptools_warning_box(tmp_path: Path) -> None:
    """The PEP 660 hook pip calls prints no boxed warning (`****` between `!!` lines)."""
    done = subprocess.run(
        [sys.executable, "-c", EDITABLE, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.glob("stardag-*.whl"))
    assert "*" * 20 not in done.stderr and "Warning" not in done.stderr, done.stderr
