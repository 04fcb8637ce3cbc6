"""Where things live: target roots and the Stardag home, read at use time.

- `STARDAG_HOME` (default `~/.stardag`) holds the default store root (`store/`)
  and the registry (`registry.db`).
- `STARDAG_TARGET_ROOTS` is JSON `{"default": "/path or URL", ...}`;
  `STARDAG_TARGET_ROOTS__<KEY>` sets one key and wins over the JSON.
- Profiles: named sets of registry URL, target roots and remote, in TOML files:
  the user's `$STARDAG_HOME/config.toml` (`~/.stardag/config.toml`) and a
  project's `.stardag/config.toml`, found from the working directory upward.
  `STARDAG_PROFILE`, else `[default] profile = ...` (the project's over the
  user's), picks the active one; a project's profile of a name overrides the
  user's key by key.

Precedence, for every setting: environment variables, then the active profile
(project file, then user file), then the defaults under `STARDAG_HOME`. Nothing
is read at import, so a program or a test can switch roots at run time; the
files are re-read when they change. A build resolves the profile and the roots
once, when it starts (`pinned_profile`, `pinned_roots`): its tasks all see one
configuration, however the environment changes while it runs.

```toml
[default]
profile = "team"

[profile.team]
registry = "postgresql+psycopg://alice@db.example.com/stardag"
remote = "s3://team-cache/proj"

[profile.team.target_roots]
default = "s3://team-store/proj"
```
"""

from __future__ import annotations

import functools
import json
import os
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stardag._errors import ConfigError, UnknownRootKeyError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover  # Python 3.10
    import tomli as tomllib

DEFAULT_TARGET_ROOT_KEY = "default"
_ROOTS_VAR = "STARDAG_TARGET_ROOTS"
_ROOT_KEY_PREFIX = "STARDAG_TARGET_ROOTS__"

ROOTS_OVERRIDE: ContextVar[dict[str, str] | None] = ContextVar("stardag_roots", default=None)
"""Roots that win over the environment in one context: a worker runs a task under the
roots its coordinator resolved (`stardag.build._worker.roots`)."""


def stardag_home() -> str:
    """The Stardag home directory (`STARDAG_HOME`, default `~/.stardag`)."""
    return os.path.expanduser(os.environ.get("STARDAG_HOME") or "~/.stardag")


def target_roots() -> dict[str, str]:
    """Every configured root key and its path or URL, as configured right now."""
    override = ROOTS_OVERRIDE.get()
    if override is not None:
        return dict(override)
    roots = {DEFAULT_TARGET_ROOT_KEY: os.path.join(stardag_home(), "store")}
    profile = active_profile()
    if profile is not None:
        roots.update(profile.target_roots)
    raw = os.environ.get(_ROOTS_VAR)
    if raw:
        roots.update(_parse_roots_json(raw))
    for name, value in os.environ.items():
        if name.startswith(_ROOT_KEY_PREFIX) and value:
            roots[name[len(_ROOT_KEY_PREFIX) :].lower()] = value
    return roots


def target_root(key: str = DEFAULT_TARGET_ROOT_KEY) -> str:
    """The path or URL configured for a root key; `UnknownRootKeyError` if none."""
    override = ROOTS_OVERRIDE.get()
    if override is not None:
        if key in override:
            return override[key]
        raise UnknownRootKeyError(key, list(override))
    # The hot path (every completeness check): look up the one variable, not all of them.
    single = os.environ.get(_ROOT_KEY_PREFIX + key.upper())
    if single:
        return single
    raw = os.environ.get(_ROOTS_VAR)
    if raw:
        found = _parse_roots_json(raw).get(key)
        if found:
            return found
    profile = active_profile()
    if profile is not None and key in profile.target_roots:
        return profile.target_roots[key]
    if key == DEFAULT_TARGET_ROOT_KEY:
        return os.path.join(stardag_home(), "store")
    roots = target_roots()
    try:
        return roots[key]
    except KeyError:
        raise UnknownRootKeyError(key, list(roots)) from None


@functools.lru_cache(maxsize=8)
def _parse_roots_json(raw: str) -> dict[str, str]:
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{_ROOTS_VAR} is not valid JSON ({exc}): {raw!r}") from None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise ConfigError(
            f'{_ROOTS_VAR} must be a JSON object like {{"default": "/path"}}, not {raw!r}'
        )
    return parsed


# -- profiles ------------------------------------------------------------------------------
PROFILE_VAR = "STARDAG_PROFILE"
CONFIG_FILE = "config.toml"
PROFILE_KEYS = ("registry", "remote", "target_roots")


@dataclass(frozen=True)
class Profile:
    """A named set of settings: registry URL, target roots, remote; and where each came from."""

    name: str
    registry: str | None = None
    remote: str | None = None
    target_roots: dict[str, str] = field(default_factory=dict)
    # setting ("registry", "remote", "root KEY") -> the file that set it
    sources: dict[str, str] = field(default_factory=dict)
    chosen_by: str = ""  # STARDAG_PROFILE, or the file whose [default] picked it


def user_config_path() -> Path:
    """The user's config file: `$STARDAG_HOME/config.toml` (`~/.stardag/config.toml`)."""
    return Path(stardag_home()) / CONFIG_FILE


def project_config_path(start: Path | None = None) -> Path | None:
    """The nearest `.stardag/config.toml` from `start` (the working directory) upward."""
    here = (start or Path.cwd()).resolve()
    user = user_config_path()
    for folder in (here, *here.parents):
        candidate = folder / ".stardag" / CONFIG_FILE
        if candidate.is_file() and candidate != user:
            return candidate
    return None


def config_files() -> list[Path]:
    """The config files in effect, highest precedence first (project, then user)."""
    user = user_config_path()
    found = [path for path in (project_config_path(),) if path is not None]
    return found + ([user] if user.is_file() else [])


def read_config(path: Path) -> dict[str, Any]:
    """One config file's TOML as a dict (empty if it does not exist)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}
    return _parse_config(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _parse_config(path: str, _mtime: int, _size: int) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    _check_config(path, data)
    return data


def _check_config(path: str, data: dict[str, Any]) -> None:
    profiles = data.get("profile", {})
    if not isinstance(profiles, dict) or not isinstance(data.get("default", {}), dict):
        raise ConfigError(f"config file {path}: [profile.NAME] and [default] must be tables")
    for name, values in profiles.items():
        unknown = set(values) - set(PROFILE_KEYS) if isinstance(values, dict) else {"?"}
        if unknown:
            raise ConfigError(
                f"config file {path}: profile {name!r} has unknown settings {sorted(unknown)} "
                f"(known: {', '.join(PROFILE_KEYS)})"
            )


def profiles() -> dict[str, Profile]:
    """Every profile defined in the config files in effect, by name."""
    merged: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, str]] = {}
    for path in reversed(config_files()):  # user first, so the project's keys win
        for name, values in read_config(path).get("profile", {}).items():
            entry = merged.setdefault(name, {})
            where = sources.setdefault(name, {})
            for key, value in values.items():
                if key == "target_roots" and isinstance(value, dict):
                    entry[key] = {**entry.get(key, {}), **value}  # merged key by key
                    where.update({f"root {root.lower()}": str(path) for root in value})
                else:
                    entry[key] = value
                where[key] = str(path)
    return {name: _profile(name, values, sources[name]) for name, values in merged.items()}


def _profile(name: str, values: dict[str, Any], sources: dict[str, str]) -> Profile:
    roots = values.get("target_roots", {})
    if not isinstance(roots, dict) or not all(isinstance(v, str) for v in roots.values()):
        raise ConfigError(
            f"profile {name!r}: target_roots must be a table of strings ({sources['target_roots']})"
        )
    return Profile(
        name,
        registry=_text(values.get("registry"), name, "registry"),
        remote=_text(values.get("remote"), name, "remote"),
        target_roots={str(k).lower(): v for k, v in roots.items()},
        sources=sources,
    )


def _text(value: Any, name: str, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"profile {name!r}: {key} must be a string, not {value!r}")


def active_profile_name() -> tuple[str | None, str]:
    """The active profile's name and what chose it (None, "" when no profile is active)."""
    chosen = os.environ.get(PROFILE_VAR, "").strip()
    if chosen:
        return chosen, PROFILE_VAR
    for path in config_files():
        name = read_config(path).get("default", {}).get("profile")
        if name:
            return str(name), str(path)
    return None, ""


PINNED_PROFILE: ContextVar[tuple[Profile | None] | None] = ContextVar(
    "stardag_profile", default=None
)
"""The active profile as one build resolved it when it began (`pinned_profile`)."""


@contextmanager
def pinned_profile() -> Iterator[Profile | None]:
    """Resolve the active profile once and use it for the rest of this context (one build).

    Without it every completeness check and remote look-up would search the directories
    from the working directory upward for a project config (about a third of a trivial
    task's cost); within it a build also sees one configuration from start to end, even if
    a config file is edited meanwhile. Environment variables are still read as they are.
    """
    profile = active_profile()
    token = PINNED_PROFILE.set((profile,))
    try:
        yield profile
    finally:
        PINNED_PROFILE.reset(token)


@contextmanager
def pinned_roots() -> Iterator[None]:
    """Resolve the target roots once and use them for the rest of this context (one build).

    Every task of a build looks up its root at least twice (is it complete, then its
    save), each a read of the environment; pinned, a look-up is one dict access, and
    the build's tasks all write where it began, as its remote workers already do
    (they get the roots it resolved). Roots that cannot be resolved (a malformed
    `STARDAG_TARGET_ROOTS`) are left unpinned: the error comes where a task uses them.
    """
    if ROOTS_OVERRIDE.get() is not None:  # a worker's, or an enclosing build's
        yield
        return
    try:
        roots = target_roots()
    except ConfigError:
        yield
        return
    token = ROOTS_OVERRIDE.set(roots)
    try:
        yield
    finally:
        ROOTS_OVERRIDE.reset(token)


def active_profile() -> Profile | None:
    """The active profile; an unknown name is an error that lists the defined ones."""
    pinned = PINNED_PROFILE.get()
    if pinned is not None:
        return pinned[0]
    if not os.environ.get(PROFILE_VAR) and not _any_config():
        return None  # the common case, in two stats
    name, chosen_by = active_profile_name()
    if name is None:
        return None
    found = profiles()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigError(
            f"profile {name!r} (chosen by {chosen_by}) is not defined (defined: {known}); "
            "`stardag config profile add` defines one"
        )
    profile = found[name]
    return Profile(
        profile.name,
        profile.registry,
        profile.remote,
        profile.target_roots,
        profile.sources,
        chosen_by,
    )


def configured_registry_url() -> str | None:
    """`STARDAG_REGISTRY_URL`, else the active profile's registry; None: the default file."""
    url = os.environ.get("STARDAG_REGISTRY_URL")
    if url:
        return url
    profile = active_profile()
    return profile.registry if profile is not None and profile.registry else None


def _any_config() -> bool:
    return user_config_path().is_file() or project_config_path() is not None


def redact(url: str) -> str:
    """A URL with the password of its `user:password@` part replaced by `***`."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))


def config_path(project: bool) -> Path:
    """The file profile commands write: the project's (`--project`) or the user's."""
    if not project:
        return user_config_path()
    return project_config_path() or Path.cwd() / ".stardag" / CONFIG_FILE


def save_profile(path: Path, profile: Profile) -> None:
    """Add or replace a profile in a config file (keeping the file's other profiles)."""
    data = dict(read_config(path))
    entries = dict(data.get("profile", {}))
    entry: dict[str, Any] = {}
    if profile.registry:
        entry["registry"] = profile.registry
    if profile.remote:
        entry["remote"] = profile.remote
    if profile.target_roots:
        entry["target_roots"] = dict(profile.target_roots)
    entries[profile.name] = entry
    data["profile"] = entries
    write_config(path, data)


def remove_profile(path: Path, name: str) -> bool:
    """Remove a profile from a config file (and its default if it was); whether it was there."""
    data = dict(read_config(path))
    entries = dict(data.get("profile", {}))
    if entries.pop(name, None) is None:
        return False
    data["profile"] = entries
    default = dict(data.get("default", {}))
    if default.get("profile") == name:
        default.pop("profile")
    data["default"] = default
    write_config(path, data)
    return True


def use_profile(path: Path, name: str) -> None:
    """Make `name` the default profile of a config file."""
    data = dict(read_config(path))
    data["default"] = {**data.get("default", {}), "profile": name}
    write_config(path, data)


def write_config(path: Path, data: dict[str, Any]) -> None:
    """Write a config file (its [default] table, then one table per profile), atomically."""
    lines: list[str] = []
    default = data.get("default", {})
    if default:
        lines += ["[default]", *(f"{k} = {_toml(v)}" for k, v in sorted(default.items())), ""]
    for name, values in sorted(data.get("profile", {}).items()):
        lines.append(f"[profile.{_toml_key(name)}]")
        lines += [f"{k} = {_toml(v)}" for k, v in sorted(values.items()) if k != "target_roots"]
        roots = values.get("target_roots", {})
        if roots:
            lines += ["", f"[profile.{_toml_key(name)}.target_roots]"]
            lines += [f"{_toml_key(k)} = {_toml(v)}" for k, v in sorted(roots.items())]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.write_text("\n".join(lines))
    os.replace(temp, path)


def _toml(value: Any) -> str:
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum()
    return key if bare else _toml(key)
