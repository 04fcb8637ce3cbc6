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


def compile_bytecode(python: str) -> None:
    """Write the bytecode of the `stardag` that `python` imports, as `pip install` does.

    An editable checkout has none for files changed since their last import, and a
    driver run under PYTHONDONTWRITEBYTECODE=1 would make every fresh worker process
    compile them again: a cost that no installed stardag (the released one included)
    pays, and that would be timed as ours.
    """
    subprocess.run(
        [
            python,
            "-c",
            "import compileall, os, stardag; "
            "compileall.compile_dir(os.path.dirname(stardag.__file__), quiet=1)",
        ],
        check=True,
    )
