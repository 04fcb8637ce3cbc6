"""Which remote caches are configured: `$STARDAG_HOME/remotes.json`, and `STARDAG_REMOTE`.

The file (written by `stardag remote add/remove`, read by everything else):

    {"default": "team",
     "remotes": {"team": {"url": "s3://team-cache/proj", "trusted": false,
                          "write_through": false}}}

A trusted remote's records are used without a signature (see `_signatures`).

`STARDAG_REMOTE` (a configured name, or a URL) overrides the default; `STARDAG_REMOTE=`
set to `none` turns remotes off. A URL that is not configured under a name is
untrusted and not written through.

The active remote is asked about for every task of every build (read-through), so
it is cached per (`STARDAG_HOME`, `STARDAG_REMOTE`) and re-read when this process
changes the file. Another process's edit is seen by the next process. A build looks
it up once, when it starts (`pinned`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path

from stardag._config import active_profile, stardag_home
from stardag._errors import ConfigError, RemoteError, UnknownRemoteError

ENV_VAR = "STARDAG_REMOTE"
FILE_NAME = "remotes.json"
_OFF = ("none", "off", "0")


@dataclass(frozen=True)
class Remote:
    """A remote cache: a store root URL with the same layout as a local store."""

    name: str  # the configured name, or the URL itself when given only as a URL
    url: str
    trusted: bool = False  # its records are used unsigned, and its pickles loaded (runs code)
    write_through: bool = False  # builds push each output as it is produced


@dataclass(frozen=True)
class RemotesConfig:
    """Every configured remote by name, and the default's name."""

    remotes: dict[str, Remote]
    default: str | None = None


def config_path() -> Path:
    """Where the remotes of this Stardag home are configured."""
    return Path(stardag_home()) / FILE_NAME


def load() -> RemotesConfig:
    """The configured remotes (none if the file does not exist)."""
    path = config_path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return RemotesConfig({})
    except (OSError, ValueError) as exc:
        raise RemoteError(f"{path} is not a valid remotes file: {exc}") from None
    try:
        remotes = {
            name: Remote(
                name,
                str(entry["url"]),
                bool(entry.get("trusted", False)),
                bool(entry.get("write_through", False)),
            )
            for name, entry in raw.get("remotes", {}).items()
        }
    except (AttributeError, KeyError, TypeError) as exc:
        raise RemoteError(f"{path} is not a valid remotes file: {exc!r}") from None
    default = raw.get("default")
    return RemotesConfig(remotes, default if default in remotes else None)


def save(config: RemotesConfig) -> None:
    """Write the remotes file (temp then rename) and forget the cached active remote."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = {
        name: {k: v for k, v in asdict(remote).items() if k != "name"}
        for name, remote in sorted(config.remotes.items())
    }
    data = {"default": config.default, "remotes": entries}
    temp = path.with_suffix(f".tmp-{os.getpid()}")
    temp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    temp.replace(path)
    _CACHE.clear()


def add(
    name: str,
    url: str,
    *,
    trusted: bool = False,
    write_through: bool = False,
    default: bool | None = None,
) -> Remote:
    """Configure (or reconfigure) a remote; the first one added becomes the default."""
    if not name or "://" in name or "/" in name:
        raise RemoteError(f"{name!r} is not a remote name (no slashes or '://')", remote=name)
    config = load()
    remote = Remote(name, checked_url(url), trusted, write_through)
    remotes = {**config.remotes, name: remote}
    make_default = default if default is not None else config.default is None
    save(RemotesConfig(remotes, name if make_default else config.default))
    return remote


def checked_url(url: str) -> str:
    """A remote's URL as stored: a path made absolute (the file is read from anywhere);
    `RemoteError` for a protocol that fsspec does not know."""
    url = url.strip().rstrip("/")
    if not url:
        raise RemoteError("a remote needs a URL or a path, not an empty string")
    if "://" not in url:
        return os.path.abspath(os.path.expanduser(url))
    protocol = url.split("://", 1)[0].lower()
    if protocol == "file":
        return os.path.abspath(os.path.expanduser(url[len("file://") :]))
    import fsspec

    if protocol not in fsspec.available_protocols():
        raise RemoteError(
            f"{url}: {protocol!r} is not a storage protocol fsspec knows (s3://, gs://, "
            "az://, memory://, a local path, ...); check the URL's spelling"
        )
    return url


def remove(name: str) -> Remote:
    """Forget a configured remote (the store behind it is left alone)."""
    config = load()
    if name not in config.remotes:
        raise _unknown(name, config)
    remotes = {k: v for k, v in config.remotes.items() if k != name}
    save(RemotesConfig(remotes, None if config.default == name else config.default))
    return config.remotes[name]


def resolve(name_or_url: str | None = None) -> Remote:
    """The remote a name or URL means (None: the active one); `RemoteError` if none is."""
    if name_or_url is None:
        found = active()
        if found is None:
            raise RemoteError(
                "no remote is configured: `stardag remote add NAME URL`, set "
                f"{ENV_VAR}, or pass --remote"
            )
        return found
    return _lookup(name_or_url, load())


_PINNED: ContextVar[tuple[Remote | None] | None] = ContextVar("stardag_remote", default=None)


@contextmanager
def pinned() -> Iterator[None]:
    """Look up the active remote once and use it for the rest of this context (one build).

    A build asks for it at every task's completeness check (four reads of the
    environment each). A remote setting that is not valid is left unpinned: the error
    comes where it is used, as before.
    """
    try:
        remote = active()
    except (RemoteError, ConfigError):
        yield
        return
    token = _PINNED.set((remote,))
    try:
        yield
    finally:
        _PINNED.reset(token)


def active() -> Remote | None:
    """The remote builds read through: `STARDAG_REMOTE`, else the active profile's remote,
    else the configured default."""
    pinned = _PINNED.get()
    if pinned is not None:
        return pinned[0]
    override = os.environ.get(ENV_VAR)
    if override is None:
        profile = active_profile()  # a profile's remote, below the environment
        override = profile.remote if profile is not None else None
    key = (os.environ.get("STARDAG_HOME"), override)
    try:
        return _CACHE[key]
    except KeyError:
        pass
    with _LOCK:
        found = _CACHE[key] = _active(override)
    return found


def _active(override: str | None) -> Remote | None:
    if override is not None and override.strip().lower() in _OFF:
        return None
    config = load()
    if override:
        return _lookup(override, config)
    return config.remotes.get(config.default) if config.default else None


def _lookup(name_or_url: str, config: RemotesConfig) -> Remote:
    if name_or_url in config.remotes:
        return config.remotes[name_or_url]
    if "://" not in name_or_url and not name_or_url.startswith(("/", ".")):
        raise _unknown(name_or_url, config)
    url = name_or_url.rstrip("/")
    for remote in config.remotes.values():
        if remote.url == url:
            return remote  # a configured URL keeps its flags
    return Remote(url, url)


def _unknown(name: str, config: RemotesConfig) -> UnknownRemoteError:
    known = ", ".join(sorted(config.remotes)) or "none"
    return UnknownRemoteError(
        f"no remote named {name!r} (configured: {known}); `stardag remote add {name} URL` adds one",
        remote=name,
    )


_CACHE: dict[tuple[str | None, str | None], Remote | None] = {}
_LOCK = threading.Lock()
