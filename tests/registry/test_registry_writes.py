"""Writing rows: SQLite's multi-row statements mean what the portable statements mean."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, text

import stardag as sd
from stardag.registry import _writes

T1, T2, DIGEST_A, DIGEST_B = "1" * 64, "2" * 64, "a" * 64, "b" * 64


@pytest.fixture(params=[True, False], ids=["bulk", "portable"])
def registry(
    request: pytest.FixtureRequest, registry_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sd.registry.Registry]:
    """A registry written through SQLite's multi-row statements, or the portable ones.

    On PostgreSQL (the contract's other backend) both are its portable statements.
    """
    monkeypatch.setattr(_writes, "BULK_SQLITE", request.param)
    opened = sd.registry.Registry(registry_url)
    yield opened
    opened.close()


def _rows_after_writes(registry: sd.registry.Registry) -> dict[str, list[Any]]:
    spec = {"key_schema": 1, "namespace": "", "name": "t", "version": "", "params": {}}

    def write(conn: Connection) -> None:
        _writes.put_tasks(conn, [_writes.spec_row(T1, spec, 1.0, "m", "q", None)])
        _writes.put_tasks(conn, [_writes.spec_row(T1, spec, 2.0, "m2", "q2", "f" * 64)])
        _writes.put_tasks(conn, [_writes.spec_row(T1, spec, 3.0, None, None, None)])
        _writes.put_edges(conn, _writes.edge_rows(T1, [T2, T2], "static"))
        _writes.put_outputs(conn, [_output(DIGEST_A, created=5.0, build=None, used=5.0)])
        _writes.put_outputs(conn, [_output(DIGEST_A, created=4.0, build=None, used=9.0)])
        _writes.put_outputs(conn, [_output(DIGEST_A, created=6.0, build=None, used=6.0)])
        _writes.put_outputs(conn, [_output(DIGEST_B, created=7.0, build=None, used=None)])

    registry.write(write)

    def read(conn: Connection) -> dict[str, list[Any]]:
        return {
            table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))]
            for table in ("tasks", "edges", "outputs")
        }

    return registry.read(read)


def _output(digest: str, created: float, build: str | None, used: float | None) -> dict[str, Any]:
    return {
        "task_id": T1,
        "digest": digest,
        "serializer": "json",
        "size_raw": 1,
        "size_stored": 0,
        "created": created,
        "build_id": build,
        "store": "/s",
        "last_used": used,
    }


def test_repeated_writes_keep_the_rules(registry: sd.registry.Registry) -> None:
    """A task keeps its first row but takes a new fingerprint; an output takes the newest."""
    rows = _rows_after_writes(registry)
    (task,) = rows["tasks"]
    assert (task[5], task[6], task[7], task[8]) == ("m2", "q2", "f" * 64, 1.0)
    assert rows["edges"] == [(T1, T2, "static")]
    first, second = rows["outputs"]
    assert (first[1], first[5], first[8]) == (DIGEST_A, 6.0, 6.0)
    assert (second[1], second[8]) == (DIGEST_B, None)
