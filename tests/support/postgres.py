"""A throwaway PostgreSQL server for the tests: Debian's `initdb` and `pg_ctl`, on 127.0.0.1.

One server per test session (about two seconds to start). It runs as an
unprivileged user (PostgreSQL refuses root: as root, the `postgres` account the
Debian package makes, else `nobody`), trusts local connections, listens only on
127.0.0.1 at a free port, and keeps its data in a temporary directory that
`stop` removes. Each test gets a schema of its own (`fresh_url`), so tests never
see each other's rows and no database has to be created per test.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid

SUPERUSER = "stardag"


def bin_dir() -> str:
    """The directory of `initdb` and `pg_ctl` (on PATH, else Debian's versioned one)."""
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError(
            "initdb not found: install PostgreSQL (scripts/test does: apt-get install postgresql)"
        )
    return os.path.dirname(candidates[-1])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """A PostgreSQL server in a temporary directory; `url` connects as its superuser."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.root = tempfile.mkdtemp(prefix="stardag-pg-")
        self.data = os.path.join(self.root, "data")
        self.user = _unprivileged_user()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.port = free_port()
        self._tool("initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8")
        self.start()

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the server's `postgres` database."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def fresh_url(self) -> str:
        """The URL of a new, empty schema: a registry of its own for one test."""
        schema = "t_" + uuid.uuid4().hex[:16]
        self.execute(f"CREATE SCHEMA {schema}")
        return f"{self.url}?options=-csearch_path%3D{schema}"

    def execute(self, sql: str) -> None:
        """Run one statement as the superuser, outside any transaction."""
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(sql.encode())

    @property
    def conninfo(self) -> str:
        """The libpq connection string of the `postgres` database."""
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"

    def start(self) -> None:
        """Start (or restart after `stop`) the server and wait until it accepts connections."""
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c max_connections=300",
                # A test server: durability buys nothing here and costs every commit.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        log = os.path.join(self.root, "server.log")
        self._tool("pg_ctl", "-D", self.data, "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        """Stop the server, dropping every connection (it may be started again).

        A fast shutdown: sessions are cut, but what was committed is kept (an immediate
        one would lose the commits that `synchronous_commit=off` had not flushed).
        """
        self._tool("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        """Stop the server and remove its data."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _tool(self, name: str, *args: str) -> None:
        done = subprocess.run(
            [os.path.join(self.bin, name), *args],
            user=self.user,
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)} failed:\n{done.stdout}")


def _unprivileged_user() -> str | None:
    """The account to run the server as: None when not root (then as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, but no unprivileged account to run PostgreSQL as")
