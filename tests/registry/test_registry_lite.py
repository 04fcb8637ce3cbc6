"""The build's recorder on SQLite writes through the standard library's sqlite3 (`_lite`).

It must write exactly the rows the SQLAlchemy recorder writes (which PostgreSQL and a
`Registry` passed in still use), create a new registry with exactly the models' tables,
and never import SQLAlchemy or SQLModel during a build.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import stardag as sd
from stardag.registry import _lite, _models

sd.auto_namespace(__name__)

pytestmark = pytest.mark.sqlite_only


@sd.task
def number(i: int) -> int:
    return i


@sd.task
def total(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    return a + b


@sd.task
def broken(a: sd.Depends[int]) -> int:
    raise ValueError(f"broken on {a}")


class Fan(sd.Task[int]):
    """Yields its inputs (dynamic dependencies)."""

    n: int

    def run(self) -> Any:
        yield [number(i=k) for k in range(self.n)]
        return self.n


def _dag() -> list[sd.BaseTask]:
    shared = number(i=1)
    return [total(a=shared, b=number(i=2)), Fan(n=3), broken(a=shared)]


# Columns that differ between two builds of one DAG: ids, clocks, places.
_VOLATILE = {
    "builds": {"id", "started", "ended", "pid", "argv", "cwd", "env_digest"},
    "runs": {"build_id", "started", "ended", "duration", "traceback"},
    "tasks": {"first_seen"},
    "edges": set(),
    "outputs": {"created", "build_id", "store", "last_used"},
    "claims": {"build_id", "pid", "claimed", "expires"},
    "environments": {"created", "digest", "packages"},
    "schema_version": {"applied_at"},
}


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        out = {}
        for table in _VOLATILE:
            cursor = conn.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            keep = [i for i, name in enumerate(names) if name not in _VOLATILE[table]]
            out[table] = sorted(tuple(row[i] for i in keep) for row in cursor)
        return out
    finally:
        conn.close()


def _record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, through: str) -> Path:
    """Build the DAG twice (cold, then all cached) into a fresh store and registry."""
    home = tmp_path / name
    monkeypatch.setenv("STARDAG_HOME", str(home))
    url = f"sqlite:///{home / 'registry.db'}"
    for _ in range(2):
        registry: Any = url if through == "sqlite3" else sd.registry.Registry(url)
        summary = sd.build(_dag(), registry=registry, fail_mode="continue")
        assert not summary.ok  # `broken` fails, the rest succeed
        if through == "sqlalchemy":
            registry.close()
    return home / "registry.db"


def test_the_sqlite3_recorder_writes_the_rows_sqlalchemys_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One DAG (static and dynamic edges, a failure, claims, a cached rebuild) recorded both
    ways: every row of every table the recorder writes is the same."""
    lite = _record(tmp_path, monkeypatch, "lite", "sqlite3")
    full = _record(tmp_path, monkeypatch, "full", "sqlalchemy")
    ours, theirs = _rows(lite), _rows(full)
    assert ours == theirs
    # Six runs cold; then the two complete roots, the failing one and its input.
    assert len(ours["runs"]) == 6 + 4 and len(ours["claims"]) == 6
    assert any(kind == "dynamic" for _, _, kind in ours["edges"])
    assert {r[1] for r in ours["runs"]} == {"computed", "failed", "cached"}


def test_a_build_creates_and_records_a_registry_without_sqlalchemy(tmp_path: Path) -> None:
    """In a fresh process a build creates the default registry, records into it, and neither
    SQLAlchemy nor SQLModel is imported (their import and teardown cost more than the build),
    nor the dataclasses that registry queries return."""
    script = textwrap.dedent(
        """
        import json, sys
        import stardag as sd

        @sd.task
        def one(i: int) -> int:
            return i

        @sd.task
        def two(a: sd.Depends[int], b: sd.Depends[int]) -> int:
            return a + b

        root = two(a=one(i=1), b=one(i=2))
        sd.build(root)
        sd.build(root)
        unwanted = ("sqlalchemy", "sqlmodel", "stardag.registry._graph", "stardag.registry._info")
        print(json.dumps([m for m in unwanted if m in sys.modules]))
        """
    )
    env = {"STARDAG_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []
    url = f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    builds = sd.registry.builds(registry=url)
    assert [b.status for b in builds] == ["succeeded", "succeeded"]
    assert sorted(b.counts.get("computed", 0) for b in builds) == [0, 3]


def test_a_registry_made_by_sqlite3_has_the_models_tables(tmp_path: Path) -> None:
    """The frozen migration steps that `_lite` runs give the tables, columns and indexes
    SQLModel creates, stamped with every step, at the models' schema version."""
    assert _lite.SCHEMA_VERSION == _models.SCHEMA_VERSION
    lite = tmp_path / "lite.db"
    assert isinstance(_lite.open_lite(f"sqlite:///{lite}"), _lite.LiteRegistry)
    full = tmp_path / "full.db"
    sd.registry.Registry(f"sqlite:///{full}").close()

    def shape(path: Path) -> dict[str, Any]:
        conn = sqlite3.connect(path)
        try:
            tables = [
                n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            return {
                "tables": sorted(tables),
                "columns": {t: conn.execute(f"PRAGMA table_info({t})").fetchall() for t in tables},
                "indexes": {
                    t: sorted(
                        (i[1], i[2], conn.execute(f"PRAGMA index_info({i[1]})").fetchall())
                        for i in conn.execute(f"PRAGMA index_list({t})")
                    )
                    for t in tables
                },
                "versions": conn.execute(
                    "SELECT version, name FROM schema_version ORDER BY version"
                ).fetchall(),
            }
        finally:
            conn.close()

    assert shape(lite) == shape(full)


def test_what_sqlite3_cannot_open_goes_through_sqlalchemy(tmp_path: Path) -> None:
    """A registry of a newer schema is refused by `_db`'s own error, untouched; a URL with
    options is SQLAlchemy's to read."""
    newer = tmp_path / "newer.db"
    sd.registry.Registry(f"sqlite:///{newer}").close()
    conn = sqlite3.connect(newer)
    conn.execute(
        "INSERT INTO schema_version VALUES (?, 'from the future', 0, '99')",
        (_models.SCHEMA_VERSION + 1,),
    )
    conn.commit()
    conn.close()
    with pytest.raises(sd.RegistrySchemaError, match="newer"):
        sd.build(number(i=5), registry=f"sqlite:///{newer}")
    assert not number(i=5).complete()
    with_options = f"sqlite:///{tmp_path / 'opts.db'}?timeout=5"
    assert _lite.open_lite(with_options) is None


def test_releasing_claims_looks_each_claim_up_by_its_task_id(tmp_path: Path) -> None:
    """Releases find their rows through the primary key, not by walking every claim the
    build holds (quadratic in the build's size: a 10,000-task build spent most of its
    claims' time there). Done and failed claims end released and failed."""
    from stardag.registry._claimstate import Holder

    registry = _lite.open_lite(f"sqlite:///{tmp_path / 'registry.db'}")
    assert registry is not None
    holder = Holder("build-a", "host-a", 1)
    ids = [f"{k:064x}" for k in range(11)]
    registry.write(lambda conn: _lite.claim(conn, ids, holder, 60.0))
    statements: list[str] = []
    raw = registry._connection()
    raw.set_trace_callback(statements.append)
    try:
        registry.write(lambda conn: _lite.release(conn, holder, ids[:10], {ids[10]: "boom"}))
    finally:
        raw.set_trace_callback(None)
    updates = [s for s in statements if s.startswith("UPDATE claims")]
    assert len(updates) == 2
    for statement in updates:
        plan = " ".join(row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}"))
        assert "sqlite_autoindex_claims_1 (task_id=?)" in plan, plan
    states = dict(raw.execute("SELECT task_id, state FROM claims").fetchall())
    assert states == {**dict.fromkeys(ids[:10], "released"), ids[10]: "failed"}
