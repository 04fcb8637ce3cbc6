"""Opening a registry: where it lives, SQLite settings, locks, errors, schema versions."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect

import stardag as sd
from stardag.registry import _db
from stardag.registry._migrations import MIGRATIONS
from stardag.registry._models import SCHEMA_VERSION

sd.auto_namespace(__name__)

FIXTURE_V1 = Path(__file__).parent / "fixtures" / "registry_v1.db"
FIXTURE_TOP = "5aacb8579ad1b191e39e4c6914090026f1c3755b3c253ccf850b9301732bd0eb"
RAN: list[int] = []


@sd.task
def noted(value: int) -> int:
    RAN.append(value)
    return value


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.sqlite_only
def test_default_registry_lives_in_stardag_home(stardag_home: Path) -> None:
    """Without STARDAG_REGISTRY_URL the registry is $STARDAG_HOME/registry.db."""
    assert sd.registry.default_url() == _url(stardag_home / "registry.db")
    sd.build(noted(value=1))
    assert (stardag_home / "registry.db").is_file()


@pytest.mark.sqlite_only
def test_registry_url_moves_the_registry_alone(
    tmp_path: Path, stardag_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STARDAG_REGISTRY_URL takes any SQLAlchemy URL and wins over STARDAG_HOME."""
    monkeypatch.setenv("STARDAG_REGISTRY_URL", _url(tmp_path / "elsewhere" / "reg.db"))
    sd.build(noted(value=2))
    assert (tmp_path / "elsewhere" / "reg.db").is_file()
    assert not (stardag_home / "registry.db").exists()


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    """A registry file is in WAL mode, so readers never block its writer."""
    sd.registry.Registry(_url(tmp_path / "r.db")).close()
    with closing(sqlite3.connect(tmp_path / "r.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.sqlite_only
def test_a_fresh_registry_is_stamped_with_every_schema_step(tmp_path: Path) -> None:
    """A new registry records each schema step as applied."""
    sd.registry.Registry(_url(tmp_path / "r.db")).close()
    with closing(sqlite3.connect(tmp_path / "r.db")) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.sqlite_only
def test_a_schema_1_registry_is_upgraded_in_place(tmp_path: Path) -> None:
    """Opening the fixture made by schema 1 upgrades it and keeps every row."""
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE_V1, path)
    registry = sd.registry.Registry(_url(path))
    graph = sd.registry.lineage(FIXTURE_TOP, registry=registry)
    assert len(graph.nodes) == 4
    assert sum(b.counts.get("computed", 0) for b in sd.registry.builds(registry=registry)) == 4
    outputs = sd.registry.outputs(list(graph.nodes), registry=registry)
    assert all(o.last_used == o.created for o in outputs.values())
    registry.close()


@pytest.mark.sqlite_only
def test_an_upgraded_registry_has_the_schema_of_a_new_one(tmp_path: Path) -> None:
    """Schema 1 plus every migration gives exactly the tables, columns and indexes of today."""
    shutil.copy(FIXTURE_V1, tmp_path / "old.db")
    upgraded = sd.registry.Registry(_url(tmp_path / "old.db"))
    fresh = sd.registry.Registry(_url(tmp_path / "new.db"))
    assert _structure(upgraded) == _structure(fresh)
    upgraded.close()
    fresh.close()


def _structure(registry: sd.registry.Registry) -> dict[str, object]:
    found: dict[str, object] = {}
    with registry.engine.connect() as conn:
        inspector = inspect(conn)
        for table in sorted(inspector.get_table_names()):
            columns = [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ]
            found[table] = (
                sorted(columns),
                inspector.get_pk_constraint(table)["constrained_columns"],
                sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
                sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"])
                    for f in inspector.get_foreign_keys(table)
                ),
            )
        found["triggers"] = _triggers(conn)
    return found


def _triggers(conn: Any) -> list[tuple[str, ...]]:
    """Each trigger's name and definition (with its function's body on PostgreSQL)."""
    if conn.dialect.name == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        return [tuple(row) for row in conn.exec_driver_sql(query)]
    schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
    query = (
        "SELECT t.tgname, pg_get_triggerdef(t.oid), p.prosrc FROM pg_trigger t"
        " JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_class c ON c.oid = t.tgrelid"
        " WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
        " ORDER BY t.tgname"
    )
    # A definition may name its table's schema, which is not the other registry's.
    return [
        (name, definition.replace(f"{schema}.", ""), body)
        for name, definition, body in conn.exec_driver_sql(query)
    ]


@pytest.mark.sqlite_only
def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    """A registry stamped by a future schema raises RegistrySchemaError and is not changed."""
    path = tmp_path / "future.db"
    sd.registry.Registry(_url(path)).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO schema_version VALUES (99, 'future', 0, '99.0')")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _digest(path)
    with pytest.raises(sd.RegistrySchemaError, match="newer"):
        sd.registry.Registry(_url(path))
    assert _digest(path) == before


@pytest.mark.sqlite_only
def test_a_database_that_is_not_a_registry_is_refused(tmp_path: Path) -> None:
    """Tables without a schema_version table are someone else's database."""
    path = tmp_path / "other.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(sd.RegistrySchemaError, match="not a Stardag registry"):
        sd.registry.Registry(_url(path))


@pytest.mark.sqlite_only
def test_a_read_only_registry_fails_the_build_before_any_task_runs(tmp_path: Path) -> None:
    """Building into a registry that cannot be written raises and runs nothing."""
    path = tmp_path / "r.db"
    sd.registry.Registry(_url(path)).close()
    RAN.clear()
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    with pytest.raises(sd.RegistryUnwritableError, match="registry=None"):
        sd.build(noted(value=3), registry=read_only)
    assert RAN == []
    assert not noted(value=3).complete()


@pytest.mark.sqlite_only
def test_an_unreachable_registry_directory_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry path under a regular file cannot be made: a clear error, nothing runs."""
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("STARDAG_REGISTRY_URL", _url(tmp_path / "a-file" / "registry.db"))
    RAN.clear()
    with pytest.raises(sd.RegistryUnwritableError, match="cannot create"):
        sd.build(noted(value=4))
    assert RAN == []


@pytest.mark.sqlite_only
def test_a_write_waits_out_a_short_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write blocked by another process's transaction is retried until it succeeds."""
    monkeypatch.setattr(_db, "BUSY_TIMEOUT_MS", 50)
    registry = sd.registry.Registry(_url(tmp_path / "r.db"))
    holder = _hold_write_lock(tmp_path / "r.db")
    threading.Timer(0.4, holder.rollback).start()
    sd.registry.pin("short-lock", noted(value=5).id, registry=registry)
    assert [p.name for p in sd.registry.pins(registry=registry)] == ["short-lock"]
    registry.close()


@pytest.mark.sqlite_only
def test_a_lock_held_past_every_retry_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock that outlasts the busy timeout and every retry raises RegistryLockedError."""
    monkeypatch.setattr(_db, "BUSY_TIMEOUT_MS", 20)
    monkeypatch.setattr(_db, "LOCK_RETRIES", 2)
    registry = sd.registry.Registry(_url(tmp_path / "r.db"))
    holder = _hold_write_lock(tmp_path / "r.db")
    with pytest.raises(sd.RegistryLockedError, match="locked"):
        registry.write(lambda conn: conn.exec_driver_sql("DELETE FROM tasks"))
    holder.rollback()
    registry.close()


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


@pytest.mark.sqlite_only
def test_open_returns_one_registry_per_url(tmp_path: Path) -> None:
    """sd.registry.open(url) opens a URL once per process."""
    url = _url(tmp_path / "r.db")
    assert sd.registry.open(url) is sd.registry.open(url)


def test_schema_1_upgraded_on_open_equals_a_new_registry(
    registry_url: str, registry_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Schema 1 as its migration writes it, opened, has exactly the schema of a new registry."""
    engine = create_engine(registry_url)
    with engine.begin() as conn:
        for statement in MIGRATIONS[0].statements_for(conn.dialect.name):
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("INSERT INTO schema_version VALUES (1, 'initial', 0, '0')")
    engine.dispose()
    upgraded = sd.registry.Registry(registry_url)
    if registry_backend == "postgresql":
        fresh_url = request.getfixturevalue("postgres").fresh_url()
    else:
        fresh_url = _url(tmp_path / "fresh.db")
    fresh = sd.registry.Registry(fresh_url)
    assert _structure(upgraded) == _structure(fresh)
    assert "claims" in _structure(upgraded)
    assert [t[0] for t in _structure(upgraded)["triggers"]] == ["edges_link", "edges_unlink"]
    upgraded.close()
    fresh.close()
