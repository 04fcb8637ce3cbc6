"""The shared fixtures keep tests apart: nothing one test opens outlives it."""

from __future__ import annotations

from pathlib import Path

import pytest
from open_registries import open_files_under

# Imported here, so the registries the inner run opens outlive it unless they are closed
# (pytester drops the modules that the inner run imported first, and with them its registries).
import stardag.registry._db
import stardag.registry._lite  # noqa: F401

INNER = """
import stardag as sd
from open_registries import open_files_under


@sd.task
def one() -> int:
    return 1


def registry_files(home):
    return [p for p in open_files_under(str(home)) if "registry.db" in p]


def test_opens_its_default_registry(stardag_home):
    assert sd.registry.builds() == []
    assert registry_files(stardag_home)


def test_builds_into_its_default_registry(stardag_home):
    sd.build(one())
    assert registry_files(stardag_home)


def test_builds_and_asks_its_registry(stardag_home):
    sd.build(one())
    assert len(sd.registry.builds()) == 1
    assert registry_files(stardag_home)
"""


def test_a_test_s_default_registry_is_closed_when_it_ends(pytester: pytest.Pytester) -> None:
    """Tests that query, build into, or both, their default registry leave no file open."""
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_inner=INNER)
    temp = pytester.path / "temp"
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--basetemp={temp}")
    result.assert_outcomes(passed=3)
    assert open_files_under(str(temp)) == []
