"""Where things live: target roots and the Stardag home, read at use time.

- `STARDAG_HOME` (default `~/.stardag`) holds the default store root (`store/`)
  and the registry (`registry.db`).
- `STARDAG_TARGET_ROOTS` is JSON `{"default": "/path or URL", ...}`;
  `STARDAG_TARGET_ROOTS__<KEY>` sets one key and wins over the JSON.

Nothing is read at import, so a program or a test can switch roots at run time.
"""

from __future__ import annotations

import functools
import json
import os

from stardag._errors import StardagError, UnknownRootKeyError

DEFAULT_TARGET_ROOT_KEY = "default"
_ROOTS_VAR = "STARDAG_TARGET_ROOTS"
_ROOT_KEY_PREFIX = "STARDAG_TARGET_ROOTS__"


def stardag_home() -> str:
    """The Stardag home directory (`STARDAG_HOME`, default `~/.stardag`)."""
    return os.path.expanduser(os.environ.get("STARDAG_HOME") or "~/.stardag")


def target_roots() -> dict[str, str]:
    """Every configured root key and its path or URL, as configured right now."""
    roots = {DEFAULT_TARGET_ROOT_KEY: os.path.join(stardag_home(), "store")}
    raw = os.environ.get(_ROOTS_VAR)
    if raw:
        roots.update(_parse_roots_json(raw))
    for name, value in os.environ.items():
        if name.startswith(_ROOT_KEY_PREFIX) and value:
            roots[name[len(_ROOT_KEY_PREFIX) :].lower()] = value
    return roots


def target_root(key: str = DEFAULT_TARGET_ROOT_KEY) -> str:
    """The path or URL configured for a root key; `UnknownRootKeyError` if none."""
    # The hot path (every completeness check): look up the one variable, not all of them.
    single = os.environ.get(_ROOT_KEY_PREFIX + key.upper())
    if single:
        return single
    raw = os.environ.get(_ROOTS_VAR)
    if raw:
        found = _parse_roots_json(raw).get(key)
        if found:
            return found
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
        raise StardagError(f"{_ROOTS_VAR} is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise StardagError(f'{_ROOTS_VAR} must be a JSON object like {{"default": "/path"}}')
    return parsed
