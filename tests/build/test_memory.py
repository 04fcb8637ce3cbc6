"""What a build keeps per task: the bookkeeping of a 100,000-task build must stay small.

Speed and peak memory are measured by scripts/bench/scale.py; these tests check the
structures behind them: a finished task's graph node lets go of its edges, the
recorder forgets the tasks it is done with, tasks share their fields-set and keep
their spec as canonical JSON, and the SQLite writer prepares few distinct statements.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

import stardag as sd
from stardag import _hashing
from stardag.build import _engine, _rows
from stardag.registry import _bulk

sd.auto_namespace(__name__)


@sd.task
def leaf(i: int) -> int:
    return i


@sd.task
def pair(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    return a + b


class Fan(sd.Task[int]):
    """Yields its inputs (dynamic dependencies) before it returns."""

    n: int

    def run(self) -> Any:
        yield [leaf(i=100 + k) for k in range(self.n)]
        return self.n


def _tree(salt: int) -> sd.BaseTask:
    level: list[sd.BaseTask] = [leaf(i=salt * 1000 + k) for k in range(8)]
    while len(level) > 1:
        level = [pair(a=level[j], b=level[j + 1]) for j in range(0, len(level), 2)]
    return level[0]


def test_finished_nodes_let_go_of_their_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    engines: list[_engine.Engine] = []
    original = _engine.Engine.__init__

    def keep(self: _engine.Engine, **kwargs: Any) -> None:
        original(self, **kwargs)
        engines.append(self)

    monkeypatch.setattr(_engine.Engine, "__init__", keep)
    root = _tree(1)
    sd.build([root, Fan(n=3)], registry=None)
    (engine,) = engines
    assert len(engine.nodes) == 15 + 1 + 3
    for node in engine.nodes.values():
        assert node.state is _engine.State.DONE
        assert (node.deps, node.dependents, node.waiters) == ((), (), ())
    assert root.load() == sum(1000 + k for k in range(8))


def test_the_recorder_forgets_tasks_once_their_last_event_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    makers: list[_rows.RowMaker] = []
    original = _rows.RowMaker.__init__

    def keep(self: _rows.RowMaker, build_id: str, place: Any = None) -> None:
        original(self, build_id, place)
        makers.append(self)

    monkeypatch.setattr(_rows.RowMaker, "__init__", keep)
    summary = sd.build([_tree(2), Fan(n=3)])
    (maker,) = makers
    assert maker._seen == set()
    runs = sd.registry.build(summary.build_id).counts
    assert runs == {"computed": 19}
    again = sd.build([_tree(2), Fan(n=3)])
    assert sd.registry.build(again.build_id).counts == {"cached": 2}


def test_tasks_of_one_shape_share_one_fields_set() -> None:
    a, b = leaf(i=1), leaf(i=2)
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    changed = a.model_copy(update={"i": 3})
    assert changed.__pydantic_fields_set__ is not a.__pydantic_fields_set__
    assert a.__pydantic_fields_set__ == {"i"} and b.model_fields_set == {"i"}
    assert copy.deepcopy(a) == a


def test_the_spec_is_made_again_on_request_not_kept() -> None:
    task = pair(a=leaf(i=1), b=leaf(i=2))
    assert not hasattr(task, "_sd_spec")
    spec = task.spec()
    assert spec["params"] == {"a": {"$task": leaf(i=1).id}, "b": {"$task": leaf(i=2).id}}
    assert _hashing.task_id_of(spec) == task.id
    spec["params"]["a"]["$task"] = "changed"  # a new dict: the task's spec is untouched
    assert task.spec()["params"]["a"]["$task"] == leaf(i=1).id
    assert _hashing.task_id_of(copy.deepcopy(task).spec()) == task.id


def test_multi_row_inserts_come_in_few_statement_sizes() -> None:
    sizes = {count for total in range(1, 1000) for count in _bulk._chunks(total, 71)}
    assert sizes == {71, 64, 32, 16, 8, 4, 2, 1}
    assert all(sum(_bulk._chunks(total, 71)) == total for total in range(1000))


class Ring(sd.Task[int]):
    """Requires the next of three: a cycle through requires()."""

    k: int

    def requires(self) -> sd.TaskStruct:
        return Ring(k=(self.k + 1) % 3)

    def run(self) -> int:
        return self.k


@sd.task
def step(prev: sd.Depends[int], i: int) -> int:
    return prev + i


def test_the_cycle_check_walks_deep_chains_and_names_the_cycle_below_them() -> None:
    """The check walks iteratively: a long chain is no cycle, and one under it is named."""
    chain: sd.BaseTask = leaf(i=-1)
    for i in range(3000):
        chain = step(prev=chain, i=i)
    sd.build(chain, registry=None)
    assert chain.load() == -1 + sum(range(3000))
    above: sd.BaseTask = Ring(k=0)
    for i in range(50):
        above = step(prev=above, i=i)
    with pytest.raises(sd.DependencyCycleError) as info:
        sd.build([leaf(i=7), above], registry=None)
    cycle = info.value.cycle
    assert len(cycle) == 4 and cycle[0] == cycle[-1]
    assert set(cycle) == {Ring(k=k).id for k in range(3)}


def test_a_writer_that_falls_behind_holds_up_the_build_not_its_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events waiting for a slow registry writer never pile up past MAX_PENDING."""
    from stardag.build import _recorder

    monkeypatch.setattr(_recorder, "BATCH_EVENTS", 10)
    monkeypatch.setattr(_recorder, "MAX_PENDING", 30)
    most = [0]
    handle, rows = _recorder.Recorder.handle, _rows.RowMaker.rows

    def counted(self: _recorder.Recorder, event: Any) -> None:
        handle(self, event)
        most[0] = max(most[0], len(self._events))

    def slow(self: _rows.RowMaker, facts: Any, extra: Any = None) -> Any:
        threading.Event().wait(0.05)  # a writer much slower than the build
        return rows(self, facts, extra)

    monkeypatch.setattr(_recorder.Recorder, "handle", counted)
    monkeypatch.setattr(_rows.RowMaker, "rows", slow)
    tasks = [leaf(i=5000 + k) for k in range(300)]
    summary = sd.build(tasks)
    assert most[0] <= 30
    assert sd.registry.build(summary.build_id).counts == {"computed": 300}
