"""The effective configuration, and where each setting came from (`stardag config show`).

Every setting is an environment variable read when used; this module lists them
with their current values and sources, and reads the gc settings:
`STARDAG_GC_KEEP_LAST` (builds), `STARDAG_GC_KEEP_SINCE` and `STARDAG_GC_GRACE`
(durations such as `7d`, `1h`), which `stardag gc` uses when no option says otherwise.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from stardag import _config
from stardag._errors import StardagError

GC_KEEP_LAST = "STARDAG_GC_KEEP_LAST"
GC_KEEP_SINCE = "STARDAG_GC_KEEP_SINCE"
GC_GRACE = "STARDAG_GC_GRACE"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Setting:
    """One setting: its name, its value now, and where that value came from."""

    name: str
    value: str | None
    source: str


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `90`, `30m`, `1h`, `7d` or `2w`."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None:
        raise ValueError(f"{text!r} is not a duration such as 30m, 1h, 7d or 2w")
    return float(found.group(1)) * _UNITS[found.group(2)]


def gc_keep_last() -> int | None:
    """`STARDAG_GC_KEEP_LAST`, or None."""
    raw = os.environ.get(GC_KEEP_LAST, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise StardagError(f"{GC_KEEP_LAST} must be a whole number of builds, not {raw!r}")
    return int(raw)


def gc_duration(name: str) -> float | None:
    """A gc duration variable (`STARDAG_GC_KEEP_SINCE`, `STARDAG_GC_GRACE`) in seconds."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise StardagError(f"{name}: {exc}") from None


def default_threads() -> int:
    """The zstd worker default, without importing the blob module's dependencies early."""
    from stardag.store._blob import default_threads as blob_default

    return blob_default()


def effective() -> list[Setting]:
    """Every setting with its value and source, as configured right now."""
    found = [_home(), _profile(), _registry()]
    found += _roots()
    found += _remotes()
    for name, default in (
        (GC_KEEP_LAST, None),
        (GC_KEEP_SINCE, None),
        (GC_GRACE, "1h"),
        ("STARDAG_NO_REGISTRY", None),
        ("STARDAG_ZSTD_LEVEL", "1"),
        ("STARDAG_ZSTD_THREADS", str(default_threads())),
        ("STARDAG_FSYNC", "0"),
        ("STARDAG_CLAIMS", "on"),
    ):
        found.append(_env(name, default))
    return found


def _env(name: str, default: str | None) -> Setting:
    value = os.environ.get(name)
    if value:
        return Setting(name, value, "environment")
    return Setting(name, default, "default" if default is not None else "unset")


def _home() -> Setting:
    source = "STARDAG_HOME" if os.environ.get("STARDAG_HOME") else "default (~/.stardag)"
    return Setting("home", _config.stardag_home(), source)


def _profile() -> Setting:
    name, chosen_by = _config.active_profile_name()
    return Setting("profile", name, chosen_by or "unset")


def _from_profile(key: str) -> tuple[str | None, str]:
    """A profile setting's value and its source: `profile NAME (FILE)`."""
    profile = _config.active_profile()
    if profile is None:
        return None, ""
    roots = profile.target_roots
    value = roots.get(key[5:]) if key.startswith("root ") else getattr(profile, key)
    source = profile.sources.get(key, "")
    return value, f"profile {profile.name} ({source})"


def _registry() -> Setting:
    from stardag.registry import default_url
    from stardag.registry._db import safe_url

    url = safe_url(default_url())  # a password in a URL is never shown
    if os.environ.get("STARDAG_REGISTRY_URL"):
        return Setting("registry", url, "STARDAG_REGISTRY_URL")
    value, source = _from_profile("registry")
    if value:
        return Setting("registry", url, source)
    return Setting("registry", url, "home (STARDAG_HOME/registry.db)")


def _roots() -> list[Setting]:
    found = []
    for key, value in sorted(_config.target_roots().items()):
        found.append(Setting(f"root {key}", _config.redact(value), _root_source(key)))
    return found


def _remotes() -> list[Setting]:
    """The active remote cache and every configured one (`stardag remote add`)."""
    from stardag.remote import _config as _remotes_config

    config = _remotes_config.load()
    where = str(_remotes_config.config_path())
    found = [
        Setting(f"remote {name}", _config.redact(remote.url), where)
        for name, remote in sorted(config.remotes.items())
    ]
    override = os.environ.get(_remotes_config.ENV_VAR)
    in_profile, source = _from_profile("remote")
    if override:
        found.append(Setting("active remote", override, _remotes_config.ENV_VAR))
    elif in_profile:
        found.append(Setting("active remote", in_profile, source))
    elif config.default:
        found.append(Setting("active remote", config.default, where))
    else:
        found.append(Setting("active remote", None, "unset"))
    return found


def _root_source(key: str) -> str:
    single = "STARDAG_TARGET_ROOTS__" + key.upper()
    if os.environ.get(single):
        return single
    raw = os.environ.get("STARDAG_TARGET_ROOTS")
    if raw and key in _config._parse_roots_json(raw):
        return "STARDAG_TARGET_ROOTS"
    value, source = _from_profile(f"root {key}")
    return source if value else "home (STARDAG_HOME/store)"
