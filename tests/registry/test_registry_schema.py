"""`schema/`: generated from the code, and it must not drift from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import stardag as sd
from stardag.registry import _schema
from stardag.registry._migrations import MIGRATIONS
from stardag.registry._models import SCHEMA_VERSION

sd.auto_namespace(__name__)

SCHEMA = Path(__file__).parents[2] / "schema"


@sd.task
def doubled(value: int) -> int:
    return 2 * value


def test_schema_files_match_the_code() -> None:
    """Every file under schema/ is what scripts/gen_schema.py makes now (run it if not)."""
    expected = _schema.files()
    for relative, content in expected.items():
        path = SCHEMA / relative
        assert path.is_file(), f"schema/{relative} is missing: run scripts/gen_schema.py"
        assert path.read_text() == content, f"schema/{relative} drifted: run scripts/gen_schema.py"


def test_schema_holds_no_stale_files() -> None:
    """schema/ holds nothing the generator no longer makes (a removed migration, say)."""
    found = {str(p.relative_to(SCHEMA)) for p in SCHEMA.rglob("*") if p.is_file()}
    assert found == set(_schema.files())


def test_migrations_are_numbered_up_to_the_schema_version() -> None:
    """Migration steps are 1, 2, ... SCHEMA_VERSION with no gap."""
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


def test_ddl_creates_the_registry_in_sqlite(tmp_path: Path) -> None:
    """The generated DDL runs in SQLite and creates every table."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(tmp_path / "ddl.db")) as conn:
        conn.executescript((SCHEMA / "registry.sql").read_text())
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {"tasks", "edges", "outputs", "builds", "runs", "environments", "pins"} <= tables


def test_an_action_record_validates_against_its_json_schema() -> None:
    """A record the store wrote is valid under schema/action_record.schema.json."""
    jsonschema = pytest.importorskip("jsonschema")
    task = doubled(value=21)
    sd.build(task)
    record = task.target().record()
    assert record is not None
    spec_schema = json.loads((SCHEMA / "task_spec.schema.json").read_text())
    record_schema = json.loads((SCHEMA / "action_record.schema.json").read_text())
    record_schema["properties"]["spec"] = spec_schema
    jsonschema.validate(json.loads(record.to_json()), record_schema)
    jsonschema.validate(task.spec(), spec_schema)
