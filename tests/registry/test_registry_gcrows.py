"""What gc and verify read from the registry in bulk, alike on SQLite and PostgreSQL."""

from __future__ import annotations

import stardag as sd
from stardag._config import target_root
from stardag.maintenance._gc import GcRoots, mark
from stardag.maintenance._verify import verify
from stardag.registry import _gcrows
from stardag.registry import open as open_registry
from stardag.registry._addons import ensure
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
    names = _gcrows.store_names(store.url, store.backend.url)
    edges = registry.read(_gcrows.all_edges)
    keys = registry.read(lambda conn: _gcrows.output_keys(conn, names))
    ids = {root.id, root.a.id, root.b.id}  # type: ignore[attr-defined]
    assert sorted(edges[root.id]) == sorted([root.a.id, root.b.id])  # type: ignore[attr-defined]
    assert {t for t, _digest, _created, deleted in keys if not deleted} == ids
    plan = mark(store, registry, GcRoots(keep_last=1), grace=0)
    assert ids <= set(plan.reached_from) and plan.records == []
    report = verify(store, registry)
    assert report.ok and report.outputs == 3


def test_a_task_id_is_rendered_into_the_sql_as_a_literal_safely() -> None:
    """Bulk reads render their parameters into the SQL: a quote in one stays data."""
    registry = open_registry()
    hostile = "x' OR '1'='1"
    assert registry.read(lambda conn: _gcrows.build_tasks(conn, [hostile])) == {hostile: []}
