"""A task's parameters cannot change in place: its id hashes them."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

import stardag as sd

sd.auto_namespace(__name__)


@sd.task
def total(xs: list[int], weights: dict[str, list[float]], tags: set[str]) -> float:
    return sum(xs) + sum(sum(w) for w in weights.values()) + len(tags)


def make() -> sd.FunctionTask[float]:
    return total(xs=[1, 2], weights={"a": [0.5]}, tags={"t"})


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.xs.append(100),
        lambda t: t.xs.__setitem__(0, 5),
        lambda t: t.xs.sort(),
        lambda t: t.weights.__setitem__("b", [1.0]),
        lambda t: t.weights["a"].append(2.0),
        lambda t: t.weights.update(b=[1.0]),
        lambda t: t.tags.add("u"),
    ],
    ids=["append", "setitem", "sort", "dict-setitem", "nested-append", "update", "set-add"],
)
def test_changing_a_parameter_in_place_is_refused(change: object) -> None:
    """Lists, dicts and sets, nested too, refuse changes; the id keeps describing the task."""
    task = make()
    before = task.id
    with pytest.raises((TypeError, AttributeError)):
        change(task)  # type: ignore[operator]  # the lambdas above
    assert task.id == before == make().id
    assert task.xs == [1, 2] and task.weights == {"a": [0.5]} and task.tags == {"t"}


def test_a_frozen_task_builds_loads_and_copies_like_any_other() -> None:
    """Frozen parameters still compare equal, pickle, deep-copy and hash the same."""
    task = make()
    sd.build(task)
    assert task.load() == 4.5
    again = pickle.loads(pickle.dumps(task))
    assert again.id == task.id and again.xs == [1, 2]
    assert copy.deepcopy(task).id == task.id
    changed = task.model_copy(update={"xs": [1, 2, 100]})
    assert changed.id == total(xs=[1, 2, 100], weights={"a": [0.5]}, tags={"t"}).id
    with pytest.raises(TypeError):
        changed.xs.append(1)


@sd.task
def anything(value: Any) -> int:
    return len(value)


def test_the_callers_list_is_not_the_tasks() -> None:
    """Changing the list a task was made from (Pydantic keeps it for `Any`) leaves the task."""
    xs = [1, [2]]
    task = anything(value=xs)
    xs.append(3)
    xs[1].append(4)  # type: ignore[union-attr]  # the inner list
    assert task.value == [1, [2]] and task.id == anything(value=[1, [2]]).id
