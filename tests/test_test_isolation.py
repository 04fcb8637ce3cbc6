"""The shared fixtures keep tests apart: nothing one test opens outlives it."""

from __future__ import annotations

from pathlib import Path

import pytest
from open_registries import open_files_under

# Imported here, so the registries the inner run opens outlive it unless they are closed
# (pytester drops the modules that the inner run imported first, and with them its registries).
import stardag.registry._db  # noqa: F401

INNER = """
import stardag as sd
from open_registries import open_files_under


def test_opens_its_default_registry(stardag_home):
    assert sd.registry.builds() == []
    assert any(p.endswith("registry.db") for p in open_files_under(str(stardag_home)))


def test_opens_another(stardag_home):
    test_opens_its_default_registry(stardag_home)
"""


def test_a_test_s_default_registry_is_closed_when_it_ends(pytester: pytest.Pytester) -> None:
    """Two tests that each open their default registry leave no registry file open."""
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_inner=INNER)
    temp = pytester.path / "temp"
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--basetemp={temp}")
    result.assert_outcomes(passed=2)
    assert open_files_under(str(temp)) == []
