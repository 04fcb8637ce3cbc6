"""A registry the user cannot write, or one that is damaged: what works, and what to do."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import cli_tasks
import pytest
from cli_support import invoke, shell
from open_registries import close_opened_since, opened_urls

import stardag as sd

# Root ignores file modes; without these capabilities it obeys them like any user.
AS_A_READER = (
    [
        "setpriv",
        "--inh-caps=-dac_override,-dac_read_search",
        "--bounding-set=-dac_override,-dac_read_search",
    ]
    if os.geteuid() == 0
    else []
)


def _set_writable(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~bits)


@pytest.fixture
def read_only_home(stardag_home: Path) -> Iterator[Path]:
    """A built pipeline whose home (registry, store) nobody may write to."""
    sd.build(cli_tasks.summed)
    sd.registry.open().close()  # the last connection closed: no -wal or -shm file left
    assert not list(stardag_home.glob("registry.db-*"))
    _set_writable(stardag_home, False)
    yield stardag_home
    _set_writable(stardag_home, True)


@pytest.mark.parametrize(
    "command",
    [["history"], ["status", "cli_tasks:summed"], ["lineage", "cli_tasks:summed"], ["builds"]],
    ids=lambda c: c[0],
)
def test_read_only_commands_work_on_a_read_only_registry(
    read_only_home: Path, command: list[str]
) -> None:
    """history, status, lineage and builds read a registry nobody may write."""
    done = shell(*command, prefix=AS_A_READER)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and not done.stderr
    assert not list(read_only_home.glob("registry.db-*"))


def test_a_build_into_a_read_only_registry_says_how_to_go_on(read_only_home: Path) -> None:
    """A build cannot record: one line that names STARDAG_NO_REGISTRY=1."""
    done = shell("build", "cli_tasks:other", prefix=AS_A_READER)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "STARDAG_NO_REGISTRY=1" in done.stderr, done.stderr


@pytest.fixture
def damaged_registry(stardag_home: Path) -> Path:
    """A registry whose pages past the header were overwritten."""
    sd.build(cli_tasks.summed)
    sd.registry.open().close()
    path = stardag_home / "registry.db"
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xa5" * (len(data) - 4096)
    path.write_bytes(data)
    # The next open reads the damaged file afresh. Only this registry is let go: clearing
    # them all dropped other tests' PostgreSQL connections unclosed, to warn in the GC.
    close_opened_since(opened_urls() - {sd.registry.default_url()})
    return path


@pytest.mark.parametrize("command", [["history"], ["build", "cli_tasks:summed"]])
def test_a_damaged_registry_says_how_to_go_on(damaged_registry: Path, command: list[str]) -> None:
    """One line naming the file, `stardag reindex` and STARDAG_NO_REGISTRY=1."""
    done = invoke(*command)
    assert done.exit_code == 1, done.output
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in done.output
    for words in ("damaged", str(damaged_registry), "stardag reindex", "STARDAG_NO_REGISTRY=1"):
        assert words in line


def test_both_ways_on_from_a_damaged_registry_work(
    damaged_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building without recording works; a reindex into a fresh file restores lineage."""
    monkeypatch.setenv("STARDAG_NO_REGISTRY", "1")
    assert invoke("build", "cli_tasks:summed").exit_code == 0
    monkeypatch.delenv("STARDAG_NO_REGISTRY")
    damaged_registry.rename(damaged_registry.with_suffix(".bad"))
    done = invoke("reindex")
    assert done.exit_code == 0 and "reindexed 2 records" in done.stdout, done.output
    assert cli_tasks.summed.id[:12] in invoke("lineage", "cli_tasks:summed").stdout
