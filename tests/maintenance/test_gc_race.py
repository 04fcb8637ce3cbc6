"""gc against a build that runs meanwhile: nothing the build wrote or reused is ever deleted.

Every test here uses a grace period of 0 s, so nothing but the running build and the
re-checks can keep the build's outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import gc_race_tasks
import pytest
from cli_support import TESTS, shell

import stardag as sd
from stardag._config import target_root
from stardag.build import BuildEvent
from stardag.maintenance._gc import GcPlan, GcRoots, mark
from stardag.maintenance._sweep import sweep
from stardag.registry import Registry
from stardag.registry import open as open_registry
from stardag.store._store import CLOCK_SLACK, Store, blob_path, record_path, store_for

sd.auto_namespace(__name__)


@sd.task
def keeper(n: int) -> int:
    return n


ROOTS = GcRoots(tasks=(keeper(n=1).id,))  # a root that works with or without the registry


@pytest.fixture
def store() -> Store:
    """The default store, with a pinned root (so gc may run) and no other root."""
    sd.build(keeper(n=1))
    sd.registry.pin("keep", keeper(n=1))
    return store_for(target_root())


def _garbage(salt: int) -> sd.BaseTask:
    """A task nothing needs: gc must delete it (so each test shows gc really ran)."""
    task = gc_race_tasks.fresh(salt=10_000 + salt)
    sd.build(task)
    store = store_for(target_root())
    record = store.get_record(task.id)
    assert record is not None
    then = time.time() - 3600  # files an hour old: not "since the mark", in any clock
    for path in (record_path(task.id), blob_path(record.digest)):
        os.utime(store.backend.abspath(path), (then, then))  # type: ignore[attr-defined]
    return task


def _assert_whole(salt: int) -> None:
    """Every output of the pipeline is complete and loads."""
    pipeline = gc_race_tasks.pipeline(salt)
    for task in (pipeline, pipeline.a, pipeline.b, pipeline.c):  # type: ignore[attr-defined]
        assert task.complete(), task
        task.load()


@pytest.mark.parametrize("with_registry", [True, False])
def test_outputs_written_or_reused_between_mark_and_sweep_are_kept(
    store: Store, with_registry: bool
) -> None:
    """Mark, then a whole build reuses and writes outputs, then sweep: none of them goes."""
    sd.build(gc_race_tasks.old(salt=1))
    garbage = _garbage(1)
    registry = open_registry() if with_registry else None
    plan = mark(store, registry, ROOTS, grace=0)
    assert {c.key for c in plan.records} >= {gc_race_tasks.old(salt=1).id, garbage.id}
    sd.build(gc_race_tasks.pipeline(1))  # reuses old, writes twin (old's very blob)
    result = sweep(plan, registry, apply=True)
    assert garbage.id in {c.key for c in result.deleted}
    _assert_whole(1)


class _GcAt:
    """A build listener that marks at one event of the build and sweeps at a later one."""

    def __init__(self, store: Store, registry: Registry | None, at: int, then: int) -> None:
        self.store, self.registry, self.at, self.then = store, registry, at, then
        self.seen = 0
        self.plan: GcPlan | None = None
        self.deleted: set[str] = set()
        self.swept = False

    def handle(self, event: BuildEvent) -> None:
        if self.seen == self.at:
            self.plan = mark(self.store, self.registry, ROOTS, grace=0)
        if self.seen == self.then and self.plan is not None:
            result = sweep(self.plan, self.registry, apply=True)
            self.deleted |= {c.key for c in result.deleted}
            self.swept = True
        self.seen += 1


def _events(salt: int) -> int:
    """How many events one build of the pipeline emits."""

    class Count:
        seen = 0

        def handle(self, event: BuildEvent) -> None:
            self.seen += 1

    sd.build(gc_race_tasks.old(salt=salt))
    counter = Count()
    sd.build(gc_race_tasks.pipeline(salt), listeners=[counter])
    return counter.seen


def test_gc_at_every_pair_of_points_in_a_build_loses_nothing(store: Store) -> None:
    """Mark at any event of a running build and sweep at any later one: 0 losses, 0 failures."""
    registry = open_registry()  # where gc learns that the build is running
    events = _events(0)
    pairs = [(at, then) for at in range(events - 1) for then in range(at, events)]
    # (the last event ends the build: a mark then comes after it)
    garbage = [_garbage(salt) for salt in range(1, len(pairs) + 1)]
    time.sleep(CLOCK_SLACK + 0.1)  # older than a running build's margin: gc may take it
    runs, swept = 0, 0
    for salt, (at, then) in enumerate(pairs, start=1):
        sd.build(gc_race_tasks.old(salt=salt))  # reused by the build below
        gc = _GcAt(store, registry, at, then)
        sd.build(gc_race_tasks.pipeline(salt), listeners=[gc])
        _assert_whole(salt)
        runs += 1
        swept += gc.swept
    assert runs >= 20 and swept == runs
    assert not any(task.complete() for task in garbage)  # gc deleted garbage, never the build's


def test_stardag_gc_grace_0s_against_a_build_in_another_process(
    store: Store, tmp_path: Path
) -> None:
    """`stardag gc --apply --grace 0s` while another process builds: the build loses nothing."""
    sd.build(gc_race_tasks.old(salt=7))  # the other build reuses it
    garbage = _garbage(7)
    # The registry saw garbage built just now; a build that starts within CLOCK_SLACK of
    # that keeps it (gc cannot tell the two clocks apart closer than that), so wait it out.
    time.sleep(CLOCK_SLACK + 0.1)
    gate = tmp_path / "gate"
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS),
        "GC_RACE_WAIT": str(gate),
    }
    build = subprocess.Popen(
        [sys.executable, "-c", "import gc_race_tasks; gc_race_tasks.main()", "7"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        while not Path(f"{gate}.ready").exists():
            assert build.poll() is None, build.communicate()[0]
            time.sleep(0.01)
        done = shell("gc", "--apply", "--grace", "0s")
        assert done.returncode == 0, done.stderr
        assert not garbage.complete()  # gc ran and deleted what nothing needs
    finally:
        gate.touch()
        output = build.communicate(timeout=120)[0]
    assert build.returncode == 0, output
    _assert_whole(7)
