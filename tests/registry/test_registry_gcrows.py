"""What gc and verify read from the registry in bulk, alike on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import stardag as sd
from stardag._config import target_root
from stardag.maintenance._gc import GcRoots, mark
from stardag.maintenance._verify import verify
from stardag.registry import _gcreads
from stardag.registry import open as open_registry
from stardag.registry._addons import ensure
from stardag.registry._lite import open_existing_plain
from stardag.store._store import store_for

sd.auto_namespace(__name__)


@sd.task
def leaf(n: int) -> list[int]:
    return list(range(n))


@sd.task
def joined(a: sd.Depends[list[int]], b: sd.Depends[list[int]]) -> list[int]:
    return a + b


def test_edges_runs_and_outputs_read_in_bulk_are_the_builds() -> None:
    """The whole-table reads (edges, a build's tasks, output keys) give the rows written."""
    root = joined(a=leaf(n=2), b=leaf(n=3))
    sd.build(root)
    registry = open_registry()
    ensure(registry)  # the tables gc and verify add
    store = store_for(target_root())
    names = _gcreads.store_names(store.url, store.backend.url)
    edges = registry.read(_gcreads.all_edges)
    keys = registry.read(lambda conn: _gcreads.output_keys(conn, names))
    ids = {root.id, root.a.id, root.b.id}  # type: ignore[attr-defined]
    assert sorted(edges[root.id]) == sorted([root.a.id, root.b.id])  # type: ignore[attr-defined]
    assert {t for t, _digest, _created, deleted in keys if not deleted} == ids
    plan = mark(store, registry, GcRoots(keep_last=1), grace=0)
    assert ids <= set(plan.reached_from) and plan.records == []
    report = verify(store, registry)
    assert report.ok and report.outputs == 3


def test_a_task_id_is_passed_to_the_sql_as_data() -> None:
    """Bulk reads bind their parameters: a quote in a task id stays data."""
    registry = open_registry()
    hostile = "x' OR '1'='1"
    assert registry.read(lambda conn: _gcreads.build_tasks(conn, [hostile])) == {hostile: []}


@pytest.mark.sqlite_only
def test_gc_and_verify_read_alike_through_sqlite3_and_sqlalchemy() -> None:
    """A plain SQLite file read through `sqlite3` (`_lite`) gives gc the plan, and
    verify the report, that SQLAlchemy gives."""
    root = joined(a=leaf(n=4), b=leaf(n=5))
    sd.build(leaf(n=7))
    sd.build(root)
    sd.build(leaf(n=6))
    sd.registry.pin("kept", root)
    store = store_for(target_root())
    lite = open_existing_plain()
    assert lite is not None
    plans = [
        mark(store, registry, GcRoots(keep_last=1), grace=0, now=1e10)
        for registry in (lite, open_registry())
    ]
    for plan in plans:  # the fields that are not the registry's answers
        plan.store, plan.stamp = store, 0.0
    assert plans[0] == plans[1] and plans[0].roots[root.id] == "pin kept"
    assert set(plans[0].reached_from) > {root.id, leaf(n=6).id}
    assert [c.key for c in plans[0].records] == [leaf(n=7).id]
    reports = [verify(store, registry) for registry in (lite, open_registry())]
    assert reports[0] == reports[1] and reports[0].outputs == 5
