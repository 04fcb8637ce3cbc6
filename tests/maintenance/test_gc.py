"""gc: mark what roots reach, sweep the rest; dry run first, grace and re-checks always."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cli_tasks
import pytest
from cli_support import shell

import stardag as sd
from stardag._config import target_root
from stardag.maintenance._gc import GcRoots, mark
from stardag.maintenance._sweep import sweep
from stardag.maintenance._verify import verify
from stardag.registry import Registry
from stardag.registry import open as open_registry
from stardag.store._record import ActionRecord
from stardag.store._store import Store, store_for

sd.auto_namespace(__name__)


@pytest.fixture
def store() -> Store:
    """The default store, with the pipeline and one unrelated task built into it."""
    sd.build([cli_tasks.pipeline, cli_tasks.other])
    return store_for(target_root())


@pytest.fixture
def registry() -> Registry:
    """The default registry."""
    return open_registry()


def _files(store: Store) -> set[str]:
    return set(store.backend.walk("objects")) | set(store.backend.walk("records"))


def _backdate(store: Store, hours: float) -> None:
    """Make every file of the store look written `hours` ago (an old store)."""
    then = time.time() - hours * 3600
    for path in _files(store):
        os.utime(Path(store.backend.abspath(path)), (then, then))  # type: ignore[attr-defined]


def test_gc_without_any_root_refuses() -> None:
    """No pin, no build to keep, no task named: gc will not guess."""
    sd.build(cli_tasks.summed)
    with pytest.raises(sd.NoGcRootsError):
        mark(store_for(target_root()), open_registry(), GcRoots())


def test_a_dry_run_reports_but_deletes_nothing(store: Store, registry: Registry) -> None:
    """The default sweep says what would go, by family, and leaves the store as it was."""
    sd.registry.pin("report", cli_tasks.pipeline, registry=registry)
    before = _files(store)
    result = sweep(mark(store, registry, GcRoots(), grace=0), registry)
    assert result.dry_run
    assert result.count("record") == 2 and result.count("blob") == 1  # other's two tasks
    assert set(result.by_family()) == {"cli_tasks.numbers", "cli_tasks.total"}
    assert _files(store) == before


def test_apply_deletes_what_no_root_reaches(store: Store, registry: Registry) -> None:
    """A pin keeps its task and whole upstream; the rest goes; history rows stay."""
    sd.registry.pin("report", cli_tasks.pipeline, registry=registry)
    result = sweep(mark(store, registry, GcRoots(), grace=0), registry, apply=True)
    assert not result.dry_run and result.freed > 0
    assert not cli_tasks.other.complete()
    assert cli_tasks.pipeline.load().startswith("total")
    assert cli_tasks.base.load() == list(range(cli_tasks.BIG))
    assert sd.registry.history(cli_tasks.other.id, registry=registry)  # the skeleton stays


def test_after_gc_verify_is_clean_and_every_root_loads(store: Store, registry: Registry) -> None:
    """Deleted outputs are marked in the registry, so verify finds nothing amiss."""
    sd.build(cli_tasks.model)
    sd.registry.pin("model", cli_tasks.model, registry=registry)
    sd.registry.pin("report", cli_tasks.pipeline, registry=registry)
    sweep(mark(store, registry, GcRoots(), grace=0), registry, apply=True)
    report = verify(store, registry)
    assert report.findings == []
    assert cli_tasks.model.load().read_bytes("config.json") == b'{"steps": 2}'
    assert cli_tasks.pipeline.load()


def test_keep_last_keeps_the_tasks_of_the_newest_builds(store: Store, registry: Registry) -> None:
    """The last build's tasks (and their upstream) are roots; older builds' are not."""
    sd.build(cli_tasks.summed)
    plan = mark(store, registry, GcRoots(keep_last=1), grace=0)
    doomed = {c.key for c in plan.records}
    assert cli_tasks.summed.id not in doomed and cli_tasks.base.id not in doomed
    assert cli_tasks.other.id in doomed and cli_tasks.pipeline.id in doomed


def test_keep_since_keeps_builds_newer_than_a_duration(store: Store, registry: Registry) -> None:
    """Builds started within the duration are roots; seen from a day later, none are."""
    assert mark(store, registry, GcRoots(keep_since=3600), grace=0).records == []
    later = time.time() + 86400
    plan = mark(store, registry, GcRoots(keep_since=3600), grace=0, now=later)
    assert {c.key for c in plan.records} >= {cli_tasks.other.id, cli_tasks.pipeline.id}


def test_named_tasks_are_roots(store: Store, registry: Registry) -> None:
    """A task named by the caller keeps its closure."""
    plan = mark(store, registry, GcRoots(tasks=(cli_tasks.other.id,)), grace=0)
    doomed = {c.key for c in plan.records}
    assert cli_tasks.other.id not in doomed and cli_tasks.pipeline.id in doomed
    assert plan.roots[cli_tasks.other.id] == "named on the command line"


def test_the_grace_period_keeps_what_was_just_written(store: Store, registry: Registry) -> None:
    """With the default hour of grace, a fresh store loses nothing."""
    sd.registry.pin("report", cli_tasks.pipeline, registry=registry)
    plan = mark(store, registry, GcRoots())
    assert plan.candidates == []
    assert any("grace" in reason for reason in plan.kept_by_reason())


def test_a_candidate_used_since_the_mark_is_kept_on_recheck(
    store: Store, registry: Registry
) -> None:
    """Marked as if an hour later, every file looks old; the sweep's re-check disagrees."""
    sd.registry.pin("report", cli_tasks.pipeline, registry=registry)
    plan = mark(store, registry, GcRoots(), grace=60, now=time.time() + 3600)
    assert plan.candidates
    result = sweep(plan, registry, apply=True)
    assert result.deleted == [] and len(result.kept_on_recheck) == len(plan.candidates)
    assert cli_tasks.other.load() == sum(range(cli_tasks.BIG + 1))


def test_why_gives_the_chain_from_a_root(store: Store, registry: Registry) -> None:
    """`why` names the root and each task on the way down, then the blob."""
    sd.registry.pin("report", cli_tasks.pipeline, registry=registry)
    plan = mark(store, registry, GcRoots(), grace=0)
    lines = plan.why(cli_tasks.base.id)
    assert lines[0].startswith("root cli_tasks.report") and lines[0].endswith("pin report")
    assert lines[-1].startswith("  needs cli_tasks.numbers")
    record = store.get_record(cli_tasks.base.id)
    assert record is not None
    assert plan.why(record.digest)[-1] == f"  needs blob {record.digest}"
    assert "not reachable" in plan.why(cli_tasks.other.id)[0]


def test_gc_paused_between_mark_and_sweep_spares_a_concurrent_build(tmp_path: Path) -> None:
    """Another process reuses and extends an old store between mark and sweep; all it used
    survives, and what nobody used goes."""
    sd.build([cli_tasks.pipeline, cli_tasks.other, cli_tasks.model], registry=None)
    store = store_for(target_root())
    _backdate(store, hours=2)  # an old store, no registry rows: every output a candidate
    registry = open_registry()
    sd.registry.pin("other", cli_tasks.other, registry=registry)
    plan = mark(store, registry, GcRoots())
    marked = {c.key for c in plan.records}
    assert {cli_tasks.pipeline.id, cli_tasks.base.id, cli_tasks.model.id} <= marked

    # The pause: a real build in another process reuses `report` and `scaled` (cache
    # hits) and computes `extended` on top of `scaled`, while gc holds its plan.
    built = shell("build", "cli_tasks:pipeline")
    assert built.returncode == 0, built.stderr
    extended = shell("build", "cli_tasks:extended")
    assert extended.returncode == 0, extended.stderr

    result = sweep(plan, registry, apply=True)
    kept = {c.key for c in result.kept_on_recheck}
    assert {cli_tasks.pipeline.id, cli_tasks.extended.values.id} <= kept
    assert cli_tasks.pipeline.load().startswith("total")
    assert cli_tasks.extended.values.load()[:3] == [0, 2, 4]
    assert cli_tasks.extended.load() == 2 * sum(range(cli_tasks.BIG))
    assert not cli_tasks.model.complete()  # unused by anyone: deleted
    assert verify(store, registry).ok


RELEASE = threading.Event()


@sd.task
def waits_for_the_test(n: int) -> int:
    RELEASE.wait(timeout=60)
    return n


def test_a_running_build_is_a_root_but_never_reason_enough(registry: Registry) -> None:
    """While a build runs its roots are kept; yet a gc with no other root still refuses."""
    sd.build(cli_tasks.summed)
    running = threading.Thread(target=sd.build, args=(waits_for_the_test(n=1),))
    running.start()
    try:
        store = store_for(target_root())
        deadline = time.monotonic() + 30
        while not any(b.status == "running" for b in sd.registry.builds(registry=registry)):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with pytest.raises(sd.NoGcRootsError):
            mark(store, registry, GcRoots())
        plan = mark(store, registry, GcRoots(keep_last=0), grace=0)
        assert plan.roots[waits_for_the_test(n=1).id].startswith("running build")
    finally:
        RELEASE.set()
        running.join()


def test_the_mark_reads_each_record_and_the_registry_edges_once(
    store: Store, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At scale gc reads every record once and the edges in one query, whatever the depth."""
    from stardag.registry import _gcreads

    reads: list[str] = []
    passes: list[int] = []
    from_json, all_edges = ActionRecord.from_json, _gcreads.all_edges

    def counted_record(data: bytes, task_id: str) -> ActionRecord:
        reads.append(task_id)
        return from_json(data, task_id)

    def counted_edges(conn: object) -> dict[str, list[str]]:
        passes.append(1)
        return all_edges(conn)  # type: ignore[arg-type]

    monkeypatch.setattr(ActionRecord, "from_json", counted_record)
    monkeypatch.setattr(_gcreads, "all_edges", counted_edges)
    _backdate(store, 2)
    sd.registry.pin("report", cli_tasks.pipeline, registry=registry)
    plan = mark(store, registry, GcRoots(), grace=0)
    assert sorted(reads) == sorted(store.iter_records()) and passes == [1]
    live = set(plan.reached_from) & set(store.iter_records())
    assert cli_tasks.pipeline.id in live and cli_tasks.other.id not in live
    assert {c.key for c in plan.records} == set(store.iter_records()) - live
    assert all(c.size > 0 for c in plan.records)
    assert plan.kept_by_reason() == {"pin report": len(live)}


@pytest.fixture
def no_racy_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the record index cache records written just now (in real use, only records
    older than `RACY` are cached, and a test's are all younger)."""
    from stardag.store import _index

    monkeypatch.setattr(_index, "RACY", -3600.0)


@pytest.mark.usefixtures("no_racy_margin")
def test_gc_reads_a_record_rewritten_behind_the_index_and_forgets_a_deleted_one(
    store: Store, registry: Registry
) -> None:
    """The record index never outlives its file: a record republished with a new
    dependency keeps that dependency live, and a deleted record is no candidate."""
    sd.registry.pin("report", cli_tasks.pipeline, registry=registry)
    first = mark(store, registry, GcRoots(), grace=0)
    assert cli_tasks.other.id in {c.key for c in first.records}
    record = store.get_record(cli_tasks.pipeline.id)
    assert record is not None
    store.put_record(ActionRecord(**{**record.__dict__, "requires": [cli_tasks.other.id]}))
    doomed = cli_tasks.other.values.id  # type: ignore[attr-defined]
    store.delete_record(doomed)
    second = mark(store, registry, GcRoots(), grace=0)
    assert cli_tasks.other.id in second.reached_from
    assert doomed not in {c.key for c in second.records}
    assert second.chain(cli_tasks.other.id) == [cli_tasks.pipeline.id, cli_tasks.other.id]


@pytest.mark.usefixtures("no_racy_margin")
def test_a_second_mark_reads_no_unchanged_record(
    store: Store, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records whose files are as the last gc saw them come from the record index."""
    sd.registry.pin("report", cli_tasks.pipeline, registry=registry)
    first = mark(store, registry, GcRoots(), grace=0)
    reads: list[str] = []
    from_json = ActionRecord.from_json

    def counted(data: bytes, task_id: str) -> ActionRecord:
        reads.append(task_id)
        return from_json(data, task_id)

    monkeypatch.setattr(ActionRecord, "from_json", counted)
    second = mark(store, registry, GcRoots(), grace=0)
    assert reads == []
    assert second.reached_from == first.reached_from and second.records == first.records
