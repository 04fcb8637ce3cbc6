"""Virtual environments for the benchmarks: made once under ~/.cache/stardag-bench/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CACHE = Path.home() / ".cache" / "stardag-bench"


def venv_python(path: Path, *requirement: str) -> str:
    """The interpreter of a venv at `path` that has `requirement` (pip arguments), made once."""
    python, stamp = path / "bin" / "python", path / ".installed"
    if not stamp.exists() or stamp.read_text() != repr(requirement):
        print(f"making {path} with {' '.join(requirement)} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirement], check=True)
        stamp.write_text(repr(requirement))
    return str(python)
