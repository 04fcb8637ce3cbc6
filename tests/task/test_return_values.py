"""What a task returns is checked against what it declares, before anything is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import stardag as sd

sd.auto_namespace(__name__)


@sd.task
def says_int(x: int) -> int:
    return None  # type: ignore[return-value]  # the point of the test


@sd.task
def float32(x: int) -> float:
    return np.float32(1.5)  # type: ignore[return-value]  # numpy scalars are floats here


@sd.task
def int64s(x: int) -> list[int]:
    return list(np.arange(3))


@sd.task
def surrogate(x: int) -> str:
    return "ok \ud800 not ok"


class Point:
    """A plain class: its outputs are pickled."""

    def __init__(self, x: int) -> None:
        self.x = x


@sd.task
def point(x: int) -> Point:
    return None  # type: ignore[return-value]  # the point of the test


def _nothing_stored(home: Path) -> bool:
    store = home / "store"
    return not list(store.glob("records/*/*")) and not list(store.glob("objects/*/*"))


@pytest.mark.parametrize("task", [says_int(x=1), point(x=1)], ids=["json", "pickle"])
def test_returning_none_for_a_declared_type_fails_and_stores_nothing(
    task: Any, stardag_home: Path
) -> None:
    """`-> int` returning None fails that task, naming it; no record, no blob."""
    with pytest.raises(sd.SerializationError, match=type(task).get_name()) as info:
        sd.build(task)
    assert info.value.task_id == task.id
    assert "NoneType" in str(info.value)
    assert not task.complete()
    assert _nothing_stored(stardag_home)


def test_numpy_scalars_validate_as_the_declared_numbers() -> None:
    """numpy.float32 for `-> float` and numpy.int64 items for `-> list[int]` are accepted."""
    sd.build([float32(x=1), int64s(x=1)])
    assert float32(x=1).load() == 1.5
    assert int64s(x=1).load() == [0, 1, 2]


def test_lone_surrogate_in_text_is_a_serialization_error(stardag_home: Path) -> None:
    """A str UTF-8 cannot encode fails with SerializationError naming the task."""
    task = surrogate(x=1)
    with pytest.raises(sd.SerializationError, match="surrogate") as info:
        sd.build(task)
    assert info.value.task_id == task.id and task.id[:12] in str(info.value)
    assert _nothing_stored(stardag_home)
