"""Where and with what a build ran: host, user, process, interpreter, packages, git.

The installed packages are read once per process (a scan of every installed
distribution's metadata); the git state is read per build, because a working
tree changes between builds of one long-lived process (a notebook).
"""

from __future__ import annotations

import functools
import getpass
import importlib.metadata
import itertools
import json
import os
import pathlib
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass

from blake3 import blake3

# NEVER CHANGE: environment digests already stored are derived from it.
_ENVIRONMENT_PREFIX = b"stardag:environment:v1\x00"
GIT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Environment:
    """An interpreter, its platform and its installed packages, with their digest."""

    digest: str
    python_version: str
    platform: str
    packages: tuple[str, ...]  # sorted "name==version"


@dataclass(frozen=True)
class Invocation:
    """The process that ran a build."""

    host: str
    username: str
    pid: int
    argv: tuple[str, ...]
    cwd: str


@dataclass(frozen=True)
class GitState:
    """The commit of the working tree and whether tracked files differ from it."""

    commit: str | None
    dirty: bool | None


def python_version() -> str:
    """The interpreter's version, like 3.11.7."""
    return sys.version.split()[0]


@functools.lru_cache(maxsize=1)
def platform_name() -> str:
    """The platform, like Linux-6.1-x86_64-with-glibc2.36."""
    return platform.platform()


@functools.lru_cache(maxsize=1)
def current_environment() -> Environment:
    """This process's environment (packages read once per process)."""
    packages = tuple(sorted(_installed_packages()))
    payload = json.dumps([python_version(), platform_name(), packages], separators=(",", ":"))
    digest = blake3(_ENVIRONMENT_PREFIX + payload.encode()).hexdigest()
    return Environment(digest, python_version(), platform_name(), packages)


def _installed_packages() -> set[str]:
    found = set()
    for dist in importlib.metadata.distributions():
        name, version = _name_and_version(_metadata_header(dist))
        if name:
            found.add(f"{name.lower().replace('_', '-')}=={version}")
    return found


def _metadata_header(dist: importlib.metadata.Distribution) -> str | None:
    """The header of a distribution's core metadata (METADATA, else PKG-INFO).

    A distribution in a directory (nearly all of them) is read line by line up to the
    header's end: `read_text` would read and decode every package's long description
    too (about 2 MB in a venv of 190 packages). Any other kind is read whole.
    """
    where = getattr(dist, "_path", None)  # the .dist-info or .egg-info directory
    if not isinstance(where, pathlib.Path):
        return dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    for name in ("METADATA", "PKG-INFO"):
        try:
            with open(where / name, encoding="utf-8") as file:
                header = list(itertools.takewhile(lambda line: line not in ("\n", "\r\n"), file))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        if header:
            return "".join(header)
    return None


def _name_and_version(metadata: str | None) -> tuple[str | None, str | None]:
    """Name and Version from the header of a core metadata file.

    Read by hand: the header comes first, and `importlib.metadata`'s full email
    parse of every installed package costs a build a noticeable fraction of a second.
    """
    name = version = None
    for line in (metadata or "").splitlines():
        if not line:
            break  # the end of the header
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
    return name, version


def invocation() -> Invocation:
    """The current process: host, user, pid, command line and working directory."""
    return Invocation(
        host=socket.gethostname(),
        username=_username(),
        pid=os.getpid(),
        argv=tuple(sys.argv),
        cwd=os.getcwd(),
    )


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001  # no login name (a container): fall back to the uid
        return str(os.getuid()) if hasattr(os, "getuid") else "?"


def git_state(cwd: str) -> GitState:
    """The git commit of `cwd`'s working tree and its dirty flag (tracked files only)."""
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return GitState(None, None)
    if done.returncode != 0:
        return GitState(None, None)
    return _parse_status(done.stdout)


def _parse_status(output: str) -> GitState:
    commit = None
    dirty = False
    for line in output.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[2]
            commit = None if oid == "(initial)" else oid
        elif not line.startswith("#"):
            dirty = True
    return GitState(commit, dirty)
