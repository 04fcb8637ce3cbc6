"""The environment of a build: packages, interpreter, and git state."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stardag.registry._environment import (
    _metadata_header,
    current_environment,
    git_state,
    invocation,
)


def test_the_environment_lists_installed_packages() -> None:
    """The package list is sorted name==version and includes stardag itself."""
    env = current_environment()
    assert list(env.packages) == sorted(env.packages)
    assert any(p.startswith("stardag==") for p in env.packages)
    assert len(env.digest) == 64


def test_the_package_list_reads_only_headers_yet_matches_the_full_metadata(
    tmp_path: Path,
) -> None:
    """Reading each METADATA up to its header's end names the same packages as reading it
    whole, for every installed distribution and for one whose body looks like a header."""
    import importlib.metadata

    from stardag.registry._environment import _installed_packages, _name_and_version

    whole = set()
    for dist in importlib.metadata.distributions():
        name, version = _name_and_version(dist.read_text("METADATA") or dist.read_text("PKG-INFO"))
        if name:
            whole.add(f"{name.lower().replace('_', '-')}=={version}")
    assert _installed_packages() == whole

    info = tmp_path / "Odd_Pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\r\nName: Odd_Pkg\r\nVersion: 1.0\r\n\r\nVersion: 9.9\n"
    )
    egg = tmp_path / "old.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: old\nVersion: 0.1\n")
    found = {
        _name_and_version(_metadata_header(d))
        for d in importlib.metadata.distributions(path=[str(tmp_path)])
    }
    assert found == {("Odd_Pkg", "1.0"), ("old", "0.1")}


def test_the_invocation_is_this_process() -> None:
    """host, user, pid and working directory describe the current process."""
    import os

    found = invocation()
    assert found.pid == os.getpid() and found.cwd == os.getcwd() and found.host


def test_outside_a_git_tree_there_is_no_commit(tmp_path: Path) -> None:
    """A directory that is no git working tree has no commit and no dirty flag."""
    state = git_state(str(tmp_path))
    assert (state.commit, state.dirty) == (None, None)


def test_a_modified_tracked_file_makes_the_tree_dirty(tmp_path: Path) -> None:
    """Changing a committed file sets the dirty flag; untracked files do not."""
    run = lambda *args: subprocess.run(  # noqa: E731
        ["git", *args], cwd=tmp_path, check=True, capture_output=True
    )
    run("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    run("add", "a.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "1")
    (tmp_path / "untracked.txt").write_text("new")
    assert git_state(str(tmp_path)).dirty is False
    (tmp_path / "a.txt").write_text("2")
    assert git_state(str(tmp_path)).dirty is True
