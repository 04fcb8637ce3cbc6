"""`stardag config show` (every setting and its source) and `stardag config profile ...`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stardag.cli._app import config_app
from stardag.cli._common import JsonFlag, command, console, fail, print_json


@config_app.command("show")
@command
def show(as_json: JsonFlag = False) -> None:
    """Every setting: its value now and where it came from."""
    from stardag.maintenance._settings import effective

    found = effective()
    if as_json:
        print_json([s.__dict__ for s in found])
        return
    from rich.table import Table

    table = Table(box=None)
    for column in ("setting", "value", "from"):
        table.add_column(column)
    for setting in found:
        table.add_row(setting.name, setting.value or "-", setting.source)
    console().print(table)


profile_app = typer.Typer(
    name="profile", help="Named settings: registry, target roots, remote.", no_args_is_help=True
)
config_app.add_typer(profile_app)
ProjectFlag = Annotated[
    bool,
    typer.Option("--project", help="Write the project's .stardag/config.toml, not the user's."),
]


@profile_app.command("add")
@command
def profile_add(
    name: Annotated[str, typer.Argument(help="The profile's name.")],
    registry_url: Annotated[
        str | None, typer.Option("--registry", help="Its registry: an SQLAlchemy URL.")
    ] = None,
    roots: Annotated[
        list[str] | None,
        typer.Option("--root", help="A target root, KEY=PATH_OR_URL (repeatable)."),
    ] = None,
    remote: Annotated[
        str | None, typer.Option("--remote", help="Its remote cache: a name or URL.")
    ] = None,
    project: ProjectFlag = False,
    use: Annotated[bool, typer.Option("--use", help="Also make it the default profile.")] = False,
) -> None:
    """Add (or replace) a profile."""
    from stardag import _config

    parsed = dict(_root(text) for text in roots or [])
    path = _config.config_path(project)
    _config.save_profile(path, _config.Profile(name, registry_url, remote, parsed))
    if use:
        _config.use_profile(path, name)
    console().print(f"profile [bold]{name}[/bold] saved in {path}")


def _root(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        fail(f"--root {text!r}: expected KEY=PATH_OR_URL, such as default=s3://bucket/store")
    return key.strip().lower(), value.strip()


@profile_app.command("list")
@command
def profile_list(as_json: JsonFlag = False) -> None:
    """Every profile, the active one marked, with where each is defined."""
    from stardag import _config

    active, _ = _config.active_profile_name()
    found = _config.profiles()
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "active": name == active,
            "registry": _config.redact(p.registry) if p.registry else None,
            "remote": _config.redact(p.remote) if p.remote else None,
            "target_roots": {k: _config.redact(v) for k, v in p.target_roots.items()},
            "files": sorted(set(p.sources.values())),
        }
        for name, p in sorted(found.items())
    ]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(box=None)
    for column in ("", "profile", "registry", "roots", "remote", "from"):
        table.add_column(column)
    for row in rows:
        roots = ", ".join(f"{k}={v}" for k, v in sorted(row["target_roots"].items()))
        table.add_row(
            "*" if row["active"] else "",
            str(row["name"]),
            row["registry"] or "-",
            roots or "-",
            row["remote"] or "-",
            ", ".join(row["files"]),
        )
    console().print(table)


@profile_app.command("use")
@command
def profile_use(
    name: Annotated[str, typer.Argument(help="The profile to make the default.")],
    project: ProjectFlag = False,
) -> None:
    """Make a profile the default (STARDAG_PROFILE still overrides it)."""
    from stardag import _config

    if name not in _config.profiles():
        known = ", ".join(sorted(_config.profiles())) or "none"
        fail(f"no profile named {name!r} (defined: {known}); `stardag config profile add` one")
    path = _config.config_path(project)
    _config.use_profile(path, name)
    console().print(f"default profile is now [bold]{name}[/bold] ({path})")


@profile_app.command("remove")
@command
def profile_remove(
    name: Annotated[str, typer.Argument(help="The profile to remove.")],
    project: ProjectFlag = False,
) -> None:
    """Remove a profile from the user's (or the project's) config file."""
    from stardag import _config

    path = _config.config_path(project)
    if not _config.remove_profile(path, name):
        fail(f"no profile named {name!r} in {path}")
    console().print(f"removed profile [bold]{name}[/bold] from {path}")
