"""The integrations' extras: `import stardag` loads neither, and a missing extra is named."""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCK = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == {package!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Missing())
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_stardag_loads_no_orchestrator() -> None:
    """`import stardag` (and its build package) imports neither Prefect nor Modal."""
    done = run(
        "import sys, stardag, stardag.build, stardag.integration\n"
        "print(sorted(m for m in ('prefect', 'modal') if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("extra", ["prefect", "modal"])
def test_an_integration_without_its_extra_names_the_extra(extra: str) -> None:
    """Without the package, importing the integration says which extra to install."""
    done = run(
        BLOCK.format(package=extra)
        + "import stardag as sd\n"
        + "try:\n"
        + f"    import stardag.integration.{extra}\n"
        + "except sd.OptionalDependencyError as error:\n"
        + "    print(error.package, '|', error)\n"
    )
    assert done.returncode == 0, done.stderr
    package, _, message = done.stdout.partition(" | ")
    assert package == extra
    assert f"pip install 'stardag[{extra}]'" in message
