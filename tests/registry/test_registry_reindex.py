"""reindex(): a lost registry is rebuilt from the store's action records."""

from __future__ import annotations

from pathlib import Path

import pytest

import stardag as sd
from stardag.store._store import record_path

sd.auto_namespace(__name__)


@sd.task
def seed(n: int) -> int:
    return n


@sd.task
def grow(x: sd.Depends[int]) -> int:
    return x + 1


@pytest.mark.sqlite_only
def test_a_lost_registry_is_recovered_from_the_store(stardag_home: Path) -> None:
    """After deleting the registry, reindex restores tasks, edges and outputs."""
    top = grow(x=grow(x=seed(n=1)))
    sd.build(top)
    sd.registry.open().close()
    for path in stardag_home.glob("registry.db*"):
        path.unlink()
    fresh = sd.registry.Registry(sd.registry.default_url())
    report = sd.registry.reindex(registry=fresh)
    assert (report.records, report.invalid) == (3, 0)
    graph = sd.registry.lineage(top, registry=fresh)
    assert len(graph) == 3 and len(graph.edges) == 2
    assert all(node.digest is not None for node in graph)
    fresh.close()


def test_reindex_keeps_the_build_that_wrote_an_output() -> None:
    """Reindexing a registry that recorded the build keeps each output's build id."""
    task = seed(n=2)
    summary = sd.build(task)
    sd.registry.reindex()
    assert sd.registry.outputs([task.id])[task.id].build_id == summary.build_id


def test_a_malformed_record_is_skipped_and_counted(stardag_home: Path) -> None:
    """An unreadable action record is counted as invalid; the rest are indexed."""
    sd.build(seed(n=3))
    bad = stardag_home / "store" / record_path("ab" * 32)
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("{not json")
    report = sd.registry.reindex()
    assert (report.records, report.invalid) == (1, 1)


def test_reindex_fills_in_code_of_imported_classes() -> None:
    """A task whose class is imported gets its module and fingerprint on reindex."""
    task = seed(n=4)
    sd.build(task, registry=None)
    sd.registry.reindex()
    node = sd.registry.lineage(task)[task.id]
    assert (node.module, node.qualname) == (__name__, "seed")
    assert node.fingerprint is not None and node.build_id is None
