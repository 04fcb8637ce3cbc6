"""Lineage keys: `task_keys` and `links` mirror `edges`, from a migration on, whoever writes.

Lineage walks `links` (edges by small integer keys). The database fills them by
triggers on `edges`, so each test checks the one invariant that matters: the
links, read back as ids, are exactly the edges.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

import stardag as sd
from stardag.registry import _writes
from stardag.registry._migrations import MIGRATIONS

sd.auto_namespace(__name__)

IDS = [f"{i:064x}" for i in range(8)]
GHOST = "f" * 64  # named by an edge, never recorded as a task
# 0 <- 1 <- 3, 0 <- 2 <- 3 (a diamond), 3 <- 4 (dynamic), 4 -> GHOST, 5 alone
EDGES = [
    (IDS[0], IDS[1], "static"),
    (IDS[0], IDS[2], "static"),
    (IDS[1], IDS[3], "static"),
    (IDS[2], IDS[3], "static"),
    (IDS[3], IDS[4], "dynamic"),
    (IDS[4], GHOST, "static"),
]


@sd.task
def leaf(n: int) -> int:
    return n


@sd.task
def total(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    return a + b


def _links(registry: sd.registry.Registry) -> set[tuple[str, str, str]]:
    return set(
        registry.read(
            lambda conn: conn.exec_driver_sql(
                "SELECT a.id, b.id, l.kind FROM links l"
                " JOIN task_keys a ON a.key = l.task_key JOIN task_keys b ON b.key = l.dep_key"
            ).all()
        )
    )


def _edges(registry: sd.registry.Registry) -> set[tuple[str, str, str]]:
    return set(
        registry.read(
            lambda conn: conn.exec_driver_sql("SELECT task_id, dep_id, kind FROM edges").all()
        )
    )


def _schema_5(url: str) -> None:
    """A registry as schema 5 made it, holding a few tasks and the edges among them."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for step in MIGRATIONS[:5]:
            for statement in step.statements_for(conn.dialect.name):
                conn.exec_driver_sql(statement)
            conn.exec_driver_sql(
                f"INSERT INTO schema_version VALUES ({step.version}, '{step.name}', 0, '0')"
            )
        for task_id in IDS[:6]:
            conn.exec_driver_sql(
                "INSERT INTO tasks (id, namespace, name, version, spec, first_seen)"
                f" VALUES ('{task_id}', 'old', 'node', '', '{{}}', 0)"
            )
        for task_id, dep_id, kind in EDGES:
            conn.exec_driver_sql(f"INSERT INTO edges VALUES ('{task_id}', '{dep_id}', '{kind}')")
    engine.dispose()


def test_an_upgraded_registry_links_every_edge_it_held_and_walks_them(registry_url: str) -> None:
    """Schema 5 with edges, opened: every old edge has its link, and lineage is whole in
    both directions, the dangling id and the lone task included."""
    _schema_5(registry_url)
    registry = sd.registry.Registry(registry_url)
    try:
        assert _links(registry) == _edges(registry) == set(EDGES)
        up = sd.registry.lineage(IDS[0], registry=registry)
        assert set(up.nodes) == {*IDS[:5], GHOST} and not up[GHOST].known
        assert {(e.task_id, e.dep_id, e.kind) for e in up.edges} == set(EDGES)
        down = sd.registry.lineage(IDS[3], "down", registry=registry)
        assert set(down.nodes) == set(IDS[:4])
        assert set(sd.registry.lineage(IDS[5], "both", registry=registry).nodes) == {IDS[5]}
        assert len(sd.registry.lineage(IDS[0], depth=1, registry=registry)) == 3
    finally:
        registry.close()


def test_edges_written_or_deleted_after_the_upgrade_keep_their_links(registry_url: str) -> None:
    """New edges (a known id and a new one at each end) get links; a deleted edge loses its
    link and nothing else."""
    _schema_5(registry_url)
    registry = sd.registry.Registry(registry_url)
    new = [(IDS[6], IDS[0], "static"), (IDS[7], IDS[6], "static"), (IDS[6], GHOST, "dynamic")]
    try:
        registry.write(lambda conn: _writes.put_edges(conn, [_edge(*e) for e in new]))
        registry.write(lambda conn: _writes.put_edges(conn, [_edge(*e) for e in new]))  # again
        assert _links(registry) == _edges(registry) == {*EDGES, *new}
        registry.write(
            lambda conn: conn.exec_driver_sql(
                f"DELETE FROM edges WHERE task_id = '{IDS[3]}' OR dep_id = '{IDS[0]}'"
            )
        )
        assert _links(registry) == _edges(registry) == set(EDGES[:4] + EDGES[5:] + new[1:])
        assert set(sd.registry.lineage(IDS[6], "both", registry=registry).nodes) == {
            IDS[7],
            IDS[6],
            GHOST,
        }
    finally:
        registry.close()


def _edge(task_id: str, dep_id: str, kind: str) -> dict[str, Any]:
    return {"task_id": task_id, "dep_id": dep_id, "kind": kind}


def test_a_build_links_every_edge_it_records() -> None:
    """A build's recorder writes edges only; the links follow, static and dynamic alike."""
    top = total(a=leaf(n=1), b=total(a=leaf(n=2), b=leaf(n=1)))
    sd.build(top)
    registry = sd.registry.open()
    assert _links(registry) == _edges(registry) and len(_edges(registry)) == 4
    assert len(sd.registry.lineage(top)) == 4


@pytest.mark.sqlite_only
def test_a_build_upgrades_a_schema_5_file_through_its_own_recorder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build's sqlite3 recorder (not SQLAlchemy) upgrades the file: old edges get their
    links, and the new build's edges link up with them."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _schema_5(url)
    monkeypatch.setenv("STARDAG_REGISTRY_URL", url)
    top = total(a=leaf(n=time.time_ns()), b=leaf(n=3))
    sd.build(top)
    registry = sd.registry.open(url)
    version = registry.read(
        lambda conn: conn.exec_driver_sql("SELECT max(version) FROM schema_version").scalar()
    )
    assert version == MIGRATIONS[-1].version
    assert _links(registry) == _edges(registry) == {*EDGES, *_build_edges(top)}
    assert len(sd.registry.lineage(top, registry=registry)) == 3


def _build_edges(top: Any) -> set[tuple[str, str, str]]:
    return {(top.id, top.a.id, "static"), (top.id, top.b.id, "static")}
