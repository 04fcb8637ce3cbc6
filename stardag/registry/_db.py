"""Opening a registry: the URL, SQLite tuned for many writers, retries, and the schema.

SQLite runs in WAL mode (readers never block the writer) with a busy timeout;
every write transaction starts with `BEGIN IMMEDIATE`, so it takes the write
lock up front instead of failing to upgrade a read lock halfway, and is retried
with backoff while another process holds the lock. Reads use plain `BEGIN`.

PostgreSQL (`postgresql+psycopg://...`, the `stardag[postgres]` extra) runs the
same statements: its own row locks replace `BEGIN IMMEDIATE`, pooled connections
are pinged before use, and a write that meets a deadlock, a serialization failure
or a dropped connection is retried like a locked SQLite file. Schema changes take
an advisory lock, so builders starting together create the tables once.

Opening a registry made by an older schema upgrades it in place, in one write
transaction; one made by a newer schema is refused before anything is written.
A URL is never shown with its password (`safe_url`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    create_engine,
    event,
    func,
    inspect,
    make_url,
    select,
)
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from stardag._config import configured_registry_url, stardag_home
from stardag._errors import (
    OptionalDependencyError,
    RegistryCorruptError,
    RegistryError,
    RegistryLockedError,
    RegistrySchemaError,
    RegistryUnreachableError,
    RegistryUnwritableError,
)
from stardag._version import __version__
from stardag.registry import _lite, _models
from stardag.registry._migrations import MIGRATIONS, Migration

T = TypeVar("T")
logger = logging.getLogger("stardag.registry")

BUSY_TIMEOUT_MS = 15_000
LOCK_RETRIES = 8  # after the busy timeout itself gave up
_BEGIN_OPTION = "stardag_begin"
CONNECT_TIMEOUT_S = 10
_DDL_LOCK = 0x5354_4444  # PostgreSQL advisory lock id of schema changes ("STDD")
_RETRY_STATES = ("40001", "40P01")  # serialization failure, deadlock: the retry succeeds

# Retry jitter from a generator of our own: the global one is the user's (and a
# retry in a background thread must not move it under them).
_JITTER = random.Random()


def safe_url(url: str) -> str:
    """`url` with its password masked, as it may be shown or logged."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  # not a URL SQLAlchemy parses: show no part of it
        return "<unparsable registry URL>"


def default_url() -> str:
    """`STARDAG_REGISTRY_URL`, else the active profile's registry, else SQLite at
    `$STARDAG_HOME/registry.db` (read now)."""
    url = configured_registry_url()
    if url:
        return url
    path = os.path.join(stardag_home(), "registry.db")
    # Quoted as a URL: a home with `%`, `?` or `#` in its name must not read as escapes.
    return URL.create("sqlite", database=path).render_as_string(hide_password=False)


class Registry:
    """An open registry: one SQLAlchemy engine and the schema checked.

    Get one with `sd.registry.open(url)`; every function of `sd.registry` takes
    one as `registry=` (default: the registry at `default_url()`).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.in_memory = self.is_sqlite and _is_memory(url)
        # One connection serves an in-memory database, so its users take turns;
        # on disk this only keeps this process's own writers from contending. A
        # server takes concurrent writers itself: a build's claims need not wait
        # behind its recorder's batch.
        self._write_lock: Any = threading.RLock() if self.is_sqlite else contextlib.nullcontext()
        self._read_lock: Any = self._write_lock if self.in_memory else contextlib.nullcontext()
        self.engine = _create_engine(url, self)
        try:
            self._ensure_schema()
        except BaseException:
            self.engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"Registry({safe_url(self.url)!r})"

    @property
    def safe_url(self) -> str:
        """The URL without its password, as it may be shown or logged."""
        return safe_url(self.url)

    def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one read transaction and return what it returns."""
        try:
            with self._read_lock, self.engine.connect() as conn, conn.begin():
                return work(conn)
        except DBAPIError as exc:
            raise _translate(exc, self.url) from exc

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one short write transaction, retried while it cannot go through.

        Retried: a locked SQLite file, a PostgreSQL deadlock or serialization failure,
        and a connection lost mid-way (a restarting server), with backoff for about
        ten seconds in all. `work` may run more than once, so it must only touch the
        database.
        """
        for attempt in range(LOCK_RETRIES + 1):
            try:
                return self._write_once(work)
            except DBAPIError as exc:
                if not self._retryable(exc) or attempt == LOCK_RETRIES:
                    raise _translate(exc, self.url) from exc
                time.sleep(min(2.0, 0.05 * 2**attempt) * _JITTER.uniform(0.5, 1.5))
        raise AssertionError("unreachable")

    def _retryable(self, exc: DBAPIError) -> bool:
        if self.is_sqlite:
            return _is_locked(exc)
        return _unreachable(exc, self.url) or _sqlstate(exc) in _RETRY_STATES

    def _write_once(self, work: Callable[[Connection], T]) -> T:
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            with conn.begin():
                return work(conn)

    def close(self) -> None:
        """Release the registry's connections (it reopens on next use), and those a build
        opened to the same file through `sqlite3` (`_lite`)."""
        self.engine.dispose()
        if self.is_sqlite:
            _lite.forget(self.url)

    # -- schema ---------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        version = self.read(_stored_version)
        if version == _models.SCHEMA_VERSION:
            return
        _refuse_newer(version, self.url)
        self.write(_create_or_upgrade)


def _is_memory(url: str) -> bool:
    parsed = make_url(url)
    database = parsed.database or ""
    return database in ("", ":memory:") or parsed.query.get("mode") == "memory"


def _create_engine(url: str, registry: Registry) -> Engine:
    if not registry.is_sqlite:
        return _server_engine(url)
    if not registry.in_memory:
        _make_parent_dir(url)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if registry.in_memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def _server_engine(url: str) -> Engine:
    """An engine for a database server (PostgreSQL): pinged connections, a connect timeout."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        return create_engine(url, **kwargs)
    except ImportError as exc:
        raise OptionalDependencyError(
            f"registry {safe_url(url)} needs the database driver {exc.name or parsed.drivername}: "
            "pip install 'stardag[postgres]' (psycopg 3) for postgresql+psycopg:// URLs",
            package=exc.name or parsed.drivername,
        ) from None


def lock_schema(conn: Connection) -> None:
    """Serialise schema changes between processes (PostgreSQL; SQLite's write lock does it)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_DDL_LOCK})")


def _make_parent_dir(url: str) -> None:
    database = make_url(url).database or ""
    if database.startswith("file:"):
        return  # a URI filename: SQLite resolves it
    parent = os.path.dirname(os.path.abspath(database))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise RegistryUnwritableError(
            f"cannot create the registry directory {parent}: {exc}. " + _ESCAPE, url=url
        ) from None


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # transactions are begun by _on_begin, not the driver
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Foreign keys stay declared (a server enforces them) but SQLite does not check
        # them (its default): the recorder writes rows in key order anyway, and the
        # checks cost a build about a third of its registry time.
        with contextlib.suppress(Exception):  # a read-only file keeps its journal mode
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # in WAL: durable at checkpoints
        # A lineage walk's UNION keeps the ids it reached in a temporary b-tree: in a
        # file once past the page cache (100,000 ids), which cost the walk a fifth.
        cursor.execute("PRAGMA temp_store = MEMORY")
    finally:
        cursor.close()


def _on_begin(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))


def _is_locked(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return "locked" in message or "busy" in message


_ESCAPE = (
    "Point STARDAG_REGISTRY_URL (or STARDAG_HOME) at a writable place, or build without "
    "recording: STARDAG_NO_REGISTRY=1 (sd.build(..., registry=None) in Python)."
)
_CORRUPT = ("not a database", "malformed", "corrupt")


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _unreachable(exc: DBAPIError, url: str) -> bool:
    if make_url(url).get_backend_name() == "sqlite":
        return False
    return exc.connection_invalidated or (
        isinstance(exc, OperationalError) and _sqlstate(exc) in (None, "08000", "08001", "08006")
    )


def _translate(exc: DBAPIError, url: str) -> RegistryError:
    message = _scrub(str(exc.orig).strip(), url)
    shown = safe_url(url)
    if _unreachable(exc, url):
        return RegistryUnreachableError(
            f"cannot reach registry {shown}: {message}. Check that the server is up and the "
            "host, port, user and database are right (STARDAG_REGISTRY_URL or the active "
            "profile, see `stardag config show`), or build with registry=None",
            url=shown,
        )
    if _is_locked(exc):
        return RegistryLockedError(
            f"registry {shown} stayed locked by other writers through {LOCK_RETRIES} retries "
            f"({message})",
            url=shown,
        )
    lowered = message.lower()
    if any(word in lowered for word in _CORRUPT):
        return RegistryCorruptError(
            f"registry {shown} is damaged ({message}). Move the file aside and run "
            "`stardag reindex` to rebuild it from the store, or build without recording: "
            "STARDAG_NO_REGISTRY=1",
            url=shown,
        )
    if any(word in lowered for word in ("readonly", "read-only", "full", "unable to open")):
        return RegistryUnwritableError(
            f"registry {shown} cannot be written: {message}. " + _ESCAPE, url=shown
        )
    return RegistryError(f"registry {shown} failed: {message}", url=shown)


def _scrub(message: str, url: str) -> str:
    """A driver's message, with the URL's password taken out should the driver echo it."""
    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001  # an unparsable URL has no password to find
        return message
    return message.replace(str(password), "***") if password else message


# -- schema versions ----------------------------------------------------------------------
def _stored_version(conn: Connection) -> int | None:
    """The registry's schema version; None for an empty database."""
    tables = set(inspect(conn).get_table_names())
    if not tables:
        return None
    if _models.SchemaVersionRow.__tablename__ not in tables:
        raise RegistrySchemaError(
            f"{conn.engine.url} holds tables but no schema_version table: it is not a "
            "Stardag registry (point STARDAG_REGISTRY_URL elsewhere)",
            url=str(conn.engine.url),
        )
    version = conn.execute(select(func.max(_models.SchemaVersionRow.version))).scalar()
    return int(version) if version is not None else None


def _refuse_newer(version: int | None, url: str) -> None:
    if version is not None and version > _models.SCHEMA_VERSION:
        raise RegistrySchemaError(
            f"registry {safe_url(url)} has schema version {version}, newer than the version "
            f"{_models.SCHEMA_VERSION} this Stardag {__version__} understands; upgrade "
            "stardag to use it (it was left untouched)",
            url=safe_url(url),
        )


def _create_or_upgrade(conn: Connection) -> None:
    lock_schema(conn)
    version = _stored_version(conn)  # again: another process may have just done it
    _refuse_newer(version, str(conn.engine.url))
    if version == _models.SCHEMA_VERSION:
        return
    if version is None:
        SQLModel.metadata.create_all(conn)
        _stamp(conn, list(MIGRATIONS))
        return
    steps = [m for m in MIGRATIONS if m.version > version]
    for step in steps:
        logger.info(
            "upgrading registry %s to schema %d (%s)", conn.engine.url, step.version, step.name
        )
        for statement in step.statements_for(conn.dialect.name):
            conn.exec_driver_sql(statement)
    _stamp(conn, steps)


def _stamp(conn: Connection, steps: list[Migration]) -> None:
    now = time.time()
    for step in steps:
        conn.execute(
            _models.SchemaVersionRow.__table__.insert().values(  # type: ignore[attr-defined]
                version=step.version, name=step.name, applied_at=now, stardag_version=__version__
            )
        )


# -- one Registry per URL per process ------------------------------------------------------
_OPEN: dict[str, Registry] = {}
_OPEN_LOCK = threading.Lock()


def open_registry(url: str | None = None) -> Registry:
    """The registry at `url` (default: `default_url()`), opened once per process."""
    url = url or default_url()
    with _OPEN_LOCK:
        registry = _OPEN.get(url)
        if registry is None:
            registry = _OPEN[url] = Registry(url)
    return registry


def resolve(registry: Registry | str | None) -> Registry:
    """A `Registry` from a registry, a URL, or None (the default registry)."""
    return registry if isinstance(registry, Registry) else open_registry(registry)


def _forget_after_fork() -> None:
    _OPEN.clear()  # a child must not share its parent's SQLite connections


os.register_at_fork(after_in_child=_forget_after_fork)
