"""A Stardag home whose path has URL characters: the registry goes where the store goes."""

from __future__ import annotations

from pathlib import Path

import pytest

import stardag as sd

sd.auto_namespace(__name__)


@sd.task
def one(x: int) -> int:
    return x


@pytest.mark.parametrize("name", ["100%41 done", "what?x=1", "hash#tag", "with space"])
def test_registry_lands_beside_the_store_in_any_home(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`%`, `?`, `#` and spaces in STARDAG_HOME are quoted into the registry's URL."""
    home = tmp_path / "homes" / name
    monkeypatch.setenv("STARDAG_HOME", str(home))
    sd.build(one(x=1))
    assert (home / "registry.db").is_file() and (home / "store").is_dir()
    assert [p.name for p in (tmp_path / "homes").iterdir()] == [name]  # nothing beside it
    (build,) = sd.registry.builds()
    assert build.status == "succeeded"
