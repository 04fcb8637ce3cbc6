"""Profiles: `stardag config profile add/list/use/remove`, precedence, and no password shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import invoke

import stardag as sd
from stardag import _config

TEAM = "postgresql+psycopg://alice:hunter2-secret@db.example.com/stardag"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory, with a subdirectory as the working directory."""
    root = tmp_path / "project"
    (root / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(root / "src" / "deep")
    return root


def _show() -> dict[str, dict[str, str]]:
    result = invoke("config", "show", "--json")
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_add_use_list_and_remove_a_profile(stardag_home: Path, project: Path) -> None:
    """A profile added and used drives the registry and roots; removing it restores defaults."""
    added = invoke(
        "config", "profile", "add", "team", "--registry", TEAM, "--root", "default=/srv/store"
    )
    assert added.exit_code == 0, added.output
    assert (stardag_home / "config.toml").is_file()
    assert invoke("config", "profile", "use", "team").exit_code == 0
    assert sd.registry.default_url() == TEAM
    assert _config.target_root() == "/srv/store"
    listed = invoke("config", "profile", "list", "--json")
    assert listed.exit_code == 0
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["active"], row["target_roots"]) == (
        "team",
        True,
        {"default": "/srv/store"},
    )
    assert invoke("config", "profile", "remove", "team").exit_code == 0
    assert sd.registry.default_url().startswith("sqlite:///")
    assert _config.target_root() == str(stardag_home / "store")


def test_passwords_are_never_printed(project: Path) -> None:
    """Neither `profile list` nor `config show` prints a URL's password."""
    invoke("config", "profile", "add", "team", "--registry", TEAM, "--use")
    for args in (("config", "profile", "list"), ("config", "show"), ("config", "show", "--json")):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert "hunter2-secret" not in result.output
    assert _show()["registry"]["value"].startswith("postgresql+psycopg://alice:***@db.example.com")


def test_environment_then_project_then_user_then_defaults(
    stardag_home: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each setting comes from the environment, else the project file, else the user file."""
    invoke("config", "profile", "add", "team", "--root", "default=/user/store", "--root", "x=/x")
    invoke("config", "profile", "use", "team")
    assert _config.target_root() == "/user/store"
    (project / ".stardag").mkdir()
    (project / ".stardag" / "config.toml").write_text(
        '[profile.team.target_roots]\ndefault = "/project/store"\n'
    )
    assert _config.target_root() == "/project/store"  # the project's keys win...
    assert _config.target_root("x") == "/x"  # ...key by key
    sources = _show()
    assert (
        sources["root default"]["source"]
        == f"profile team ({project / '.stardag' / 'config.toml'})"
    )
    assert sources["root x"]["source"] == f"profile team ({stardag_home / 'config.toml'})"
    assert sources["profile"]["source"] == str(stardag_home / "config.toml")
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__DEFAULT", "/env/store")
    assert _config.target_root() == "/env/store"
    assert _show()["root default"]["source"] == "STARDAG_TARGET_ROOTS__DEFAULT"


def test_stardag_profile_picks_one_and_an_unknown_one_is_an_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STARDAG_PROFILE overrides the default profile; a name not defined is a clear error."""
    invoke("config", "profile", "add", "laptop", "--root", "default=/laptop", "--use")
    invoke("config", "profile", "add", "team", "--root", "default=/team", "--project")
    assert _config.target_root() == "/laptop"
    monkeypatch.setenv("STARDAG_PROFILE", "team")
    assert _config.target_root() == "/team"
    assert _show()["profile"]["source"] == "STARDAG_PROFILE"
    monkeypatch.setenv("STARDAG_PROFILE", "nope")
    with pytest.raises(sd.StardagError, match=r"'nope'.*defined: laptop, team"):
        _config.target_root()


def test_bad_root_option_is_one_line_and_exit_2(project: Path) -> None:
    """`--root` without KEY= is bad input: one line, exit code 2."""
    result = invoke("config", "profile", "add", "team", "--root", "/no/key")
    assert result.exit_code == 2
    assert "KEY=PATH_OR_URL" in result.output and "Traceback" not in result.output


sd.auto_namespace(__name__)


@sd.task
def switches_profile(other_root: str) -> int:
    """Mid-build, make a profile with another store the default (as an editor might)."""
    _config.save_profile(
        _config.user_config_path(),
        _config.Profile("elsewhere", target_roots={"default": other_root}),
    )
    _config.use_profile(_config.user_config_path(), "elsewhere")
    return 1


@sd.task
def after_switch(first: sd.Depends[int]) -> int:
    return first + 1


def test_a_build_keeps_the_profile_it_began_with(stardag_home: Path, tmp_path: Path) -> None:
    """A config file edited during a build changes the next build, never the running one."""
    other = tmp_path / "other-store"
    task = after_switch(first=switches_profile(other_root=str(other)))
    sd.build(task, registry=None)
    assert _config.target_root() == str(other)  # the edit took effect: the next build's root
    assert not other.exists()  # but the running build wrote both outputs to its own store
    token = _config.ROOTS_OVERRIDE.set({"default": str(stardag_home / "store")})
    try:
        assert task.load() == 2
    finally:
        _config.ROOTS_OVERRIDE.reset(token)
