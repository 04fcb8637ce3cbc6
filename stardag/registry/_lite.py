"""Recording into a SQLite registry through the standard library's `sqlite3` alone.

A build's hot path (its build row, claims, and the recorder's batches) runs these
statements on one `sqlite3` connection, so a build never imports SQLAlchemy or
SQLModel, whose import and teardown cost a small pipeline more than its tasks.
SQLModel stays the schema's definition: a new or older registry is brought to the
schema by the same frozen migration steps `_db` runs; anything but a plain, writable
file at this schema or older is `_db`'s (the recorder falls back to it), and every
query outside a build goes through `_db` too. This module never imports `_db`.

The invariant: each function here writes exactly the rows its namesake in
`_writes` or `_claims` writes on SQLite, with the same conflict rules (the
contract suite records one DAG both ways and compares every row).
"""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from stardag._errors import RegistryError, RegistryLockedError
from stardag._version import __version__
from stardag.registry import _bulk
from stardag.registry._claimstate import (
    CHUNK,
    FAILED,
    HELD,
    MAX_ERROR,
    RELEASED,
    Holder,
    Seen,
    Won,
)
from stardag.registry._environment import Environment
from stardag.registry._migrations import MIGRATIONS

T = TypeVar("T")
logger = logging.getLogger("stardag.registry")
Row = dict[str, Any]

SCHEMA_VERSION = MIGRATIONS[-1].version  # `_models.SCHEMA_VERSION` (a test keeps them equal)
BUSY_TIMEOUT_MS = 15_000  # as `_db`
# Prepared statements kept per connection (the driver keeps 128 by default): a build's
# multi-row writes prepare long statements in several sizes, each holding its program.
STATEMENTS = 32
LOCK_RETRIES = 8
# Page cache per connection, in KiB (SQLite's default is 2 MiB). A build inserts rows
# keyed by random 64-hex ids into a dozen indexes; once those outgrow the cache, every
# insert reads its pages back (a 10,000-task build: ~20 MB of registry, SQLite's CPU
# per task 66 -> 40 us with 8 MiB). The cache fills only as pages are touched.
CACHE_KIB = 8192
_PREFIX = "sqlite:///"

# Retry jitter from a generator of our own: the global one is the user's (and a
# retry in a background thread must not move it under them).
_JITTER = random.Random()


class LiteConnection:
    """A `sqlite3` connection inside one transaction, with the one method `_bulk` uses."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def exec_driver_sql(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement with positional parameters."""
        return self.raw.execute(sql, params)


class LiteRegistry:
    """A SQLite registry file at the current schema, written through `sqlite3`."""

    is_sqlite = True
    in_memory = False

    def __init__(self, url: str, path: str, conn: sqlite3.Connection) -> None:
        self.url = url
        self.path = path
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = conn
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"LiteRegistry({self.url!r})"

    @property
    def safe_url(self) -> str:
        """The URL as it may be shown (a file path holds no password)."""
        return self.url

    def read(self, work: Callable[[LiteConnection], T]) -> T:
        """Run `work` in one read transaction; a driver error is a `RegistryError`, as
        `_db.Registry.read` raises it (`RegistryLockedError` past the busy timeout)."""
        try:
            with self._lock:
                conn = self._connection()
                conn.execute("BEGIN")
                try:
                    return work(LiteConnection(conn))
                finally:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if _is_locked(exc):
                raise RegistryLockedError(f"registry {self.url}: {exc}", url=self.url) from exc
            raise RegistryError(f"registry {self.url}: {exc}", url=self.url) from exc

    def write(self, work: Callable[[LiteConnection], T]) -> T:
        """Run `work` in one `BEGIN IMMEDIATE` transaction, retried while the file is locked."""
        for attempt in range(LOCK_RETRIES + 1):
            try:
                return self._write_once(work)
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise RegistryError(f"registry {self.url}: {exc}", url=self.url) from exc
                if attempt == LOCK_RETRIES:
                    raise RegistryLockedError(
                        f"registry {self.url} stayed locked by another process: {exc}",
                        url=self.url,
                    ) from exc
                time.sleep(min(2.0, 0.05 * 2**attempt) * _JITTER.uniform(0.5, 1.5))
            except sqlite3.Error as exc:
                raise RegistryError(f"registry {self.url}: {exc}", url=self.url) from exc
        raise AssertionError("unreachable")

    def _write_once(self, work: Callable[[LiteConnection], T]) -> T:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(LiteConnection(conn))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # a forked child must not share its parent's file
            self._conn, self._pid = None, os.getpid()
        if self._conn is None:
            self._conn = _connect(self.path)
        return self._conn

    def close(self) -> None:
        """Close the connection (it reopens on next use): the last one to close a file
        checkpoints it and removes its -wal and -shm files."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def forget(url: str) -> None:
    """Close and drop the open `LiteRegistry` of `url`, if any (`Registry.close` calls it)."""
    with _OPEN_LOCK:
        found = _OPEN.pop(url, None)
    if found is not None:
        found.close()


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, cached_statements=STATEMENTS
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return conn


def _is_locked(exc: sqlite3.Error) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message


# -- opening -----------------------------------------------------------------------------
_OPEN: dict[str, LiteRegistry] = {}
_OPEN_LOCK = threading.Lock()


def _forget_after_fork() -> None:
    global _OPEN_LOCK
    _OPEN.clear()  # a child opens its own connections (a parent's lock may be held)
    _OPEN_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def open_lite(url: str) -> LiteRegistry | None:
    """The `LiteRegistry` of `url`, opened once per process; None where it cannot serve.

    A plain SQLite file (`sqlite:///PATH`, nothing to unquote, no options) that is
    missing, at this schema or older, in a writable place, serves: it is created or
    upgraded by the frozen migration steps, as `_db` would. Anything else (a server, a
    URL with options, a newer or foreign or damaged file) is `_db`'s, which refuses it
    with its own errors.
    """
    path = _plain_path(url)
    if path is None:
        return None
    with _OPEN_LOCK:
        found = _OPEN.get(url)
        if found is None:
            conn = _open(path)
            if conn is not None:
                found = _OPEN[url] = LiteRegistry(url, path, conn)
    return found


def open_existing_plain() -> LiteRegistry | None:
    """The configured registry through `sqlite3`, where it is a plain SQLite file that
    exists and `open_lite` serves; else None (ask `_existing`, which says why not)."""
    url = plain_default_url()
    path = None if url is None else _plain_path(url)
    if url is None or path is None or not os.path.isfile(path):
        return None
    return open_lite(url)


def plain_default_url() -> str | None:
    """`_db.default_url()` where it needs no quoting (then None: ask `_db`)."""
    from stardag._config import configured_registry_url, stardag_home

    url = configured_registry_url()
    if url:
        return url
    path = os.path.join(stardag_home(), "registry.db")
    return _PREFIX + path if _quoted(path) == path else None


def _quoted(path: str) -> str:
    return urllib.parse.quote(path, safe="/:@+,=~-._")


def _plain_path(url: str) -> str | None:
    """The file of a `sqlite:///PATH` URL that needs no unquoting and has no options."""
    if not url.startswith(_PREFIX):
        return None
    path = url[len(_PREFIX) :]
    if not path or path == ":memory:" or path.startswith("file:") or _quoted(path) != path:
        return None
    return path


def _open(path: str) -> sqlite3.Connection | None:
    """A connection to the registry file at `path`, at this schema; None: `_db` decides."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return None
    if not os.access(directory, os.W_OK):  # WAL needs its -wal and -shm files beside it
        return None
    if os.path.exists(path) and not (os.path.isfile(path) and os.access(path, os.W_OK)):
        return None
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(path)
        if _ensure_schema(conn, path):
            return conn
    except (sqlite3.Error, _Foreign):
        pass  # damaged, not a database, or locked past the timeout: `_db` says which
    if conn is not None:
        conn.close()
    return None


def _ensure_schema(conn: sqlite3.Connection, path: str) -> bool:
    """Bring a new or older registry to this schema (`_db._create_or_upgrade`'s steps)."""
    if _stored_version(conn) == SCHEMA_VERSION:
        return True
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _stored_version(conn)  # again: another process may have just done it
        if version is not None and version >= SCHEMA_VERSION:
            conn.execute("ROLLBACK")
            return version == SCHEMA_VERSION
        steps = [m for m in MIGRATIONS if version is None or m.version > version]
        now = time.time()
        for step in steps:
            if version is not None:
                logger.info(
                    "upgrading registry %s to schema %d (%s)", path, step.version, step.name
                )
            for statement in step.statements_for("sqlite"):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at, stardag_version) "
                "VALUES (?, ?, ?, ?)",
                (step.version, step.name, now, __version__),
            )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return True


class _Foreign(Exception):
    """Tables, but no schema version: not a registry (`_db` says so)."""


def _stored_version(conn: sqlite3.Connection) -> int | None:
    """The schema version; None for an empty file. Raises `_Foreign` for anything else."""
    tables = {
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if not tables:
        return None
    if "schema_version" not in tables:
        raise _Foreign(tables)
    (version,) = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    if version is None:
        raise _Foreign(tables)
    return int(version)


# -- the recorder's writes (as `_writes` on SQLite) -------------------------------------
def put_build(conn: LiteConnection, row: Row) -> None:
    """Insert a build row."""
    columns = tuple(row)
    marks = ", ".join("?" * len(columns))
    conn.exec_driver_sql(
        f"INSERT INTO builds ({', '.join(columns)}) VALUES ({marks})", tuple(row.values())
    )


def update_build(conn: LiteConnection, build_id: str, values: Row) -> None:
    """Change columns of a build row."""
    sets = ", ".join(f"{column} = ?" for column in values)
    conn.exec_driver_sql(f"UPDATE builds SET {sets} WHERE id = ?", (*values.values(), build_id))


def delete_build(conn: LiteConnection, build_id: str) -> None:
    """Remove a build row and its runs (a build that stopped before it started a task)."""
    conn.exec_driver_sql("DELETE FROM runs WHERE build_id = ?", (build_id,))
    conn.exec_driver_sql("DELETE FROM builds WHERE id = ?", (build_id,))


def put_environment(conn: LiteConnection, env: Environment, now: float) -> None:
    """Record an environment once per distinct digest."""
    conn.exec_driver_sql(
        "INSERT INTO environments (digest, python_version, platform, packages, created) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (env.digest, env.python_version, env.platform, json.dumps(list(env.packages)), now),
    )


def put_tasks(conn: LiteConnection, rows: Sequence[Row]) -> None:
    """Insert new task rows; known ones take a newly seen code location."""
    _bulk.insert_many(conn, "tasks", rows, _bulk.TASKS)


def put_edges(conn: LiteConnection, rows: Sequence[Row]) -> None:
    """Insert edges that are not yet recorded."""
    _bulk.insert_many(conn, "edges", rows, _bulk.NOTHING)


def put_runs(conn: LiteConnection, rows: Sequence[Row]) -> None:
    """Insert runs."""
    _bulk.insert_many(conn, "runs", rows, _bulk.NOTHING)


def put_outputs(conn: LiteConnection, rows: Sequence[Row]) -> None:
    """Insert outputs; a known (task, digest) takes the newer writer and time."""
    _bulk.insert_many(conn, "outputs", rows, _bulk.OUTPUTS)


def touch_outputs(conn: LiteConnection, task_ids: Sequence[str], when: float) -> None:
    """A cache hit reused these tasks' outputs: their newest output rows were used `when`."""
    conn.raw.executemany(
        "UPDATE outputs SET last_used = ? WHERE outputs.task_id = ? AND outputs.created = "
        "(SELECT max(later.created) FROM outputs AS later WHERE later.task_id = outputs.task_id)",
        [(when, task_id) for task_id in task_ids],
    )


def fill_cached_digests(conn: LiteConnection, build_id: str) -> None:
    """Give this build's cached runs the digest of their task's latest recorded output."""
    newest = "(SELECT outputs.{} FROM outputs WHERE outputs.task_id = runs.task_id ORDER BY outputs.created DESC LIMIT 1)"  # noqa: E501
    conn.exec_driver_sql(
        f"UPDATE runs SET digest = {newest.format('digest')}, size_raw = "
        f"{newest.format('size_raw')} WHERE runs.build_id = ? AND runs.outcome = 'cached' "
        "AND runs.digest IS NULL",
        (build_id,),
    )


def known_outputs(conn: LiteConnection, task_ids: Sequence[str]) -> set[str]:
    """Which of these task ids have at least one output row."""
    found: set[str] = set()
    for start in range(0, len(task_ids), 500):
        chunk = task_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = conn.exec_driver_sql(
            f"SELECT task_id FROM outputs WHERE task_id IN ({marks})", tuple(chunk)
        )
        found.update(task_id for (task_id,) in rows)
    return found


# -- claims (as `_claims` on SQLite: this machine's clock) -------------------------------
_CLAIM = (
    "INSERT INTO claims (task_id, build_id, host, pid, claimed, expires, state, generation, "
    "error) VALUES {values} ON CONFLICT (task_id) DO UPDATE SET build_id = excluded.build_id, "
    "host = excluded.host, pid = excluded.pid, claimed = ?, expires = ?, state = ?, "
    "generation = (claims.generation + 1), error = NULL "
    "WHERE claims.state != ? OR claims.expires < ? RETURNING task_id, generation"
)


def claim(conn: LiteConnection, task_ids: Sequence[str], holder: Holder, ttl: float) -> list[Won]:
    """Claim these task ids for `holder`; the ones it won (held by nobody else, or expired)."""
    ordered = sorted(set(task_ids))  # one lock order for overlapping claimers, as `_claims`
    won: list[Won] = []
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        clock = time.time()
        expires = clock + ttl
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, 1, NULL)"] * len(chunk))
        params: list[Any] = []
        for task_id in chunk:
            params += (task_id, holder.build_id, holder.host, holder.pid, clock, expires, HELD)
        params += (clock, expires, HELD, HELD, clock)
        rows = conn.exec_driver_sql(_CLAIM.format(values=values), params).fetchall()
        won += [Won(task_id, generation == 1) for task_id, generation in rows]
    return won


def renew(conn: LiteConnection, holder: Holder, ttl: float) -> int:
    """Push back the expiry of every claim `holder` still holds; how many it holds."""
    cursor = conn.exec_driver_sql(
        "UPDATE claims SET expires = ? WHERE build_id = ? AND state = ?",
        (time.time() + ttl, holder.build_id, HELD),
    )
    return int(cursor.rowcount or 0)


def release(
    conn: _bulk.Executes, holder: Holder, done: Sequence[str], failed: Mapping[str, str]
) -> None:
    """Release claims: tasks finished or given up (`done`), and failed ones with their errors.

    Also `_claims.release`'s on SQLite, through SQLAlchemy's connection.
    """
    # `+build_id`: look rows up by task id (the primary key). Left to itself, SQLite's
    # planner picks the build's index and walks every claim the build ever took, per
    # statement: quadratic in the build's size.
    clock = time.time()
    for start in range(0, len(done), 500):
        chunk = list(done[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        conn.exec_driver_sql(
            f"UPDATE claims SET state = ?, expires = ? WHERE task_id IN ({marks}) "
            "AND +build_id = ? AND state = ?",
            (RELEASED, clock, *chunk, holder.build_id, HELD),
        )
    for task_id, error in sorted(failed.items()):
        conn.exec_driver_sql(
            "UPDATE claims SET state = ?, expires = ?, error = ? WHERE task_id = ? "
            "AND +build_id = ? AND state = ?",
            (FAILED, clock, error[:MAX_ERROR], task_id, holder.build_id, HELD),
        )


def poll(conn: LiteConnection, task_ids: Sequence[str]) -> list[Seen]:
    """The claims on these task ids as they stand (a task without a row is absent)."""
    clock = time.time()
    seen: list[Seen] = []
    for start in range(0, len(task_ids), 500):
        chunk = list(task_ids[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        rows = conn.exec_driver_sql(
            "SELECT task_id, build_id, state, expires < ?, error FROM claims "
            f"WHERE task_id IN ({marks})",
            (clock, *chunk),
        )
        seen += [Seen(t, b, s, bool(x), e) for t, b, s, x, e in rows]
    return seen
