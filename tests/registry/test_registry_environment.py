"""The environment of a build: packages, interpreter, and git state."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stardag.registry._environment import current_environment, git_state, invocation


def test_the_environment_lists_installed_packages() -> None:
    """The package list is sorted name==version and includes stardag itself."""
    env = current_environment()
    assert list(env.packages) == sorted(env.packages)
    assert any(p.startswith("stardag==") for p in env.packages)
    assert len(env.digest) == 64


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
