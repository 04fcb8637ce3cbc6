"""Opening a registry that must already exist: what the read-only commands use.

`sd.registry.open` creates a registry on first use, which is right for a build
and wrong for `stardag status`: asking about a registry that was never made
should say so, not leave an empty file behind. An SQLite registry this process
cannot write (another user's, or on a read-only disk) is opened read-only, so
the commands that only read it still work.
"""

from __future__ import annotations

import os
import urllib.parse

from sqlalchemy import make_url

from stardag._errors import RegistryNotFoundError, RegistryUnwritableError
from stardag.registry._db import Registry, default_url, open_registry


def registry_file(url: str) -> str | None:
    """The local file of an SQLite registry URL; None for memory or a server."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return os.path.abspath(os.path.expanduser(database))


def exists(url: str | None = None) -> bool:
    """Whether the registry at `url` (default: `default_url()`) has been created."""
    path = registry_file(url or default_url())
    return path is None or os.path.exists(path)


def open_existing(url: str | None = None) -> Registry:
    """The registry at `url`; `RegistryNotFoundError` if it does not exist yet."""
    url = url or default_url()
    if not exists(url):
        raise RegistryNotFoundError(
            f"no registry at {registry_file(url)} yet: build something first "
            "(stardag build MODULE:ATTR), or point STARDAG_HOME or STARDAG_REGISTRY_URL at "
            "an existing one",
            url=url,
        )
    try:
        return open_registry(url)
    except RegistryUnwritableError:
        path = registry_file(url)
        if path is None:
            raise
        return open_read_only(path)


def open_read_only(path: str) -> Registry:
    """An SQLite registry file opened for reading only.

    SQLite reads a WAL database read-only when its `-shm` file exists or can be
    made; in a folder nobody may write to, only as `immutable` (no locking:
    right for a file that nobody can change while it is read).
    """
    base = "sqlite:///file:" + urllib.parse.quote(path) + "?mode=ro&uri=true"
    try:
        return open_registry(base)
    except RegistryUnwritableError:
        return open_registry(base + "&immutable=1")
