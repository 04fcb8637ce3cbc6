"""AliasTask, polymorphic models, HashableSet, task_from_registry_data and load/save
validators, as the released stardag 0.28 documents them (issue 12)."""

from __future__ import annotations

from typing import Annotated

import pydantic
import pytest

import stardag as sd

sd.auto_namespace(__name__)


class Original(sd.Task[int]):
    n: int

    def run(self) -> int:
        return 40 + self.n


class Downstream(sd.Task[int]):
    source: sd.TaskLoads[int]

    def requires(self) -> sd.TaskStruct:
        return self.source

    def run(self) -> int:
        return self.source.load() + 1


def test_alias_task_keeps_ids_and_loads_the_original() -> None:
    """An alias has the original's id: downstream ids do not change; it never runs."""
    original = Original(n=2)
    alias = sd.AliasTask[int](aliased=sd.AliasedMetadata.from_task(original))
    assert alias.id == original.id
    assert Downstream(source=alias).id == Downstream(source=original).id
    assert not alias.complete()
    with pytest.raises(NotImplementedError, match="already built"):
        sd.build(alias)
    sd.build(original)
    assert alias.complete() and alias.load() == 42
    from_store = sd.AliasTask[int].from_registry(original.id)
    assert from_store.id == original.id and from_store.aliased.body is not None
    sd.build(Downstream(source=from_store))
    assert Downstream(source=original).load() == 43
    with pytest.raises(TypeError, match=r"AliasTask\[int\]"):
        sd.AliasTask(aliased=sd.AliasedMetadata.from_task(original))
    with pytest.raises(sd.TaskNotFoundError):
        sd.AliasTask[int].from_registry("0" * 64)


class Shape(sd.PolymorphicRoot):
    pass


class Circle(Shape):
    radius: float


class Square(Shape):
    side: float


class Area(sd.Task[float]):
    shape: sd.SubClass[Shape]
    shapes: tuple[Annotated[Shape, sd.Polymorphic()], ...] = ()

    def run(self) -> float:
        return 1.0


def test_polymorphic_models_round_trip() -> None:
    """A subclass survives dump and validate, through the root and in task fields."""
    circle = Circle(radius=2.0)
    dumped = circle.model_dump(mode="json")
    assert dumped["__name"] == "Circle" and dumped["__namespace"] == __name__
    assert Shape.model_validate(dumped) == circle
    task = Area(shape=circle, shapes=(Square(side=1.0), circle))
    again = Area.model_validate_json(task.model_dump_json())
    assert isinstance(again.shape, Circle) and isinstance(again.shapes[0], Square)
    assert again.id == task.id
    assert Area(shape=Square(side=2.0)).id != Area(shape=Circle(radius=2.0)).id
    with pytest.raises(pydantic.ValidationError, match="no subclass of Shape"):
        Shape.model_validate({"__namespace": "", "__name": "Triangle"})


class Tagged(sd.Task[list[str]]):
    tags: sd.HashableSet[str]

    def run(self) -> list[str]:
        return sorted(self.tags)


def test_hashable_set_dumps_in_order() -> None:
    """A set parameter: one id and one JSON dump whatever the insertion order."""
    a, b = Tagged(tags=frozenset(["x", "b", "m"])), Tagged(tags={"m", "x", "b"})
    assert a.id == b.id and a.model_dump_json() == b.model_dump_json()
    assert a.model_dump(mode="json")["tags"] == ["b", "m", "x"]
    assert Tagged.model_validate_json(a.model_dump_json()) == a


def test_task_from_registry_data_rebuilds_without_the_class() -> None:
    """The body's discriminators pick the class; a wrong expected id is refused."""
    task = Downstream(source=Original(n=5))
    body = task.model_dump(mode="json")
    rebuilt = sd.task_from_registry_data(body, expected_task_id=task.id)
    assert type(rebuilt) is Downstream and rebuilt.id == task.id
    assert isinstance(rebuilt.source, Original)
    with pytest.raises(sd.TaskRehydrationError, match="not the expected"):
        sd.task_from_registry_data(body, expected_task_id="f" * 64)
    with pytest.raises(sd.TaskRehydrationError, match="import the module"):
        sd.task_from_registry_data({"__namespace": "nowhere", "__name": "Gone"})
    with pytest.raises(sd.TaskRehydrationError, match="__namespace"):
        sd.task_from_registry_data({"n": 1})


class NonEmpty(sd.LoadValidator[list[int]]):
    def validate(self, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("empty list")
        return value


class Sorted:
    """A validator by the class attribute (no LoadValidator base)."""

    stardag_load_validator = True

    def validate(self, value: list[int]) -> list[int]:
        return sorted(value)


class Values(sd.Task[Annotated[list[int], NonEmpty(), Sorted()]]):
    items: list[int]

    def run(self) -> list[int]:
        return self.items


def test_load_validators_run_on_save_and_load() -> None:
    """A rejected value is never stored; validators run in order, also on load."""
    with pytest.raises(ValueError, match="empty list"):
        sd.build(Values(items=[]))
    assert not Values(items=[]).complete()
    sd.build(Values(items=[3, 1, 2]))
    assert Values(items=[3, 1, 2]).load() == [1, 2, 3]


class Unstable(sd.Task[int]):
    """A float that JSON cannot carry: its body does not survive a round trip."""

    ratio: float

    def run(self) -> int:
        return 0


def test_check_serialization_stability() -> None:
    """A task whose JSON body round-trips passes; one that does not is named."""
    sd.check_serialization_stability(Downstream(source=Original(n=1)))
    with pytest.raises(sd.UnstableSerializationError, match="Unstable"):
        sd.check_serialization_stability(Unstable(ratio=float("nan")))
