"""The task API: decorator and class tasks, parameters, serialization round trips."""

from __future__ import annotations

import asyncio
from typing import Annotated

import pydantic
import pytest

import stardag as sd

sd.auto_namespace(__name__)


@sd.task
def get_range(limit: int) -> list[int]:
    return list(range(limit))


@sd.task
def get_sum(integers: sd.Depends[list[int]]) -> int:
    return sum(integers)


@sd.task(name="scaled", version="3")
def scale(value: int, factor: int = 2) -> int:
    return value * factor


@sd.task
async def fetch(text: str) -> str:
    await asyncio.sleep(0)
    return text.upper()


class Doubled(sd.Task[int]):
    source: sd.TaskLoads[int]

    def requires(self) -> sd.TaskStruct:
        return self.source

    def run(self) -> None:
        self.target().save(2 * self.source.load())


class Base(sd.Task[int]):
    x: int

    def run(self) -> None:
        self.target().save(self.x)


class Child(Base):
    y: int = 0

    def run(self) -> None:
        self.target().save(self.x + self.y)


class Holder(sd.Task[int]):
    inner: sd.SubClass[Base]
    many: tuple[sd.SubClass[sd.Task[int]], ...] = ()

    def requires(self) -> sd.TaskStruct:
        return [self.inner, *self.many]

    def run(self) -> None:
        self.target().save(self.inner.load())


def test_quick_example() -> None:
    """The README's example builds and loads."""
    sum_task = get_sum(integers=get_range(limit=4))
    sd.build(sum_task)
    assert sum_task.load() == 6
    assert sum_task.integers.load() == [0, 1, 2, 3]
    assert sum_task.output().load() == 6


def test_nothing_runs_at_construction() -> None:
    """Constructing a task is declarative: nothing is built."""
    task = get_sum(integers=get_range(limit=3))
    assert not task.complete()
    with pytest.raises(sd.TargetNotFoundError, match="build it first"):
        task.load()


def test_call_runs_the_plain_function() -> None:
    """`Fn.call(...)` runs the function with plain values."""
    assert get_sum.call([1, 2, 3]) == 6
    assert scale.call(3) == 6


def test_decorator_name_and_version() -> None:
    """`@sd.task(name=..., version=...)` sets the task's name and version."""
    task = scale(value=1)
    assert type(task).get_name() == "scaled"
    assert task.version == "3"
    assert task.spec()["version"] == "3"


def test_plain_parameter_takes_a_task() -> None:
    """A plain parameter accepts a task producing its type and receives its value."""
    task = scale(value=get_sum(integers=get_range(limit=3)))
    sd.build(task)
    assert task.load() == 6


def test_async_function_task() -> None:
    """An `async def` task runs on the event loop."""
    task = fetch(text="hi")
    sd.build(task)
    assert task.load() == "HI"


def test_missing_return_annotation_is_an_error() -> None:
    """A function without a return annotation cannot become a task."""
    with pytest.raises(sd.MissingReturnAnnotationError, match="return annotation"):

        @sd.task
        def no_return(x: int):  # type: ignore[no-untyped-def]  # the point of the test
            return x


def test_invalid_parameter_is_a_validation_error() -> None:
    """A parameter of the wrong type is Pydantic's ValidationError."""
    with pytest.raises(pydantic.ValidationError):
        get_range(limit="many")


def test_unknown_parameter_is_a_validation_error() -> None:
    """A misspelt parameter is rejected, not ignored."""
    with pytest.raises(pydantic.ValidationError):
        get_range(limt=3)


def test_depends_rejects_a_raw_value() -> None:
    """`sd.Depends[T]` needs a task; a raw value is a clear validation error."""
    with pytest.raises(pydantic.ValidationError, match="pass a task that produces it"):
        get_sum(integers=[1, 2, 3])


def test_task_loads_rejects_a_raw_value() -> None:
    """`sd.TaskLoads[T]` needs a task producing T."""
    with pytest.raises(pydantic.ValidationError, match="got a raw int"):
        Doubled(source=3)


def test_task_loads_warns_about_a_task_of_another_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """A task producing str is not a task producing int: a warning, or an error when asked."""
    with pytest.warns(UserWarning, match="produces str"):
        Doubled(source=fetch(text="x"))
    monkeypatch.setenv("STARDAG_POLYMORPHIC_ON_GENERIC_TYPE_MISMATCH", "raise")
    with pytest.raises(pydantic.ValidationError, match="produces str"):
        Doubled(source=fetch(text="x"))


def test_class_api_builds() -> None:
    """`sd.Task[T]` with requires() and run() builds bottom-up."""
    task = Doubled(source=scale(value=5))
    sd.build(task)
    assert task.load() == 20


def test_tasks_compare_and_hash_by_id() -> None:
    """Equal parameters give equal, hashable tasks; different ones do not."""
    a, b, c = get_range(limit=2), get_range(limit=2), get_range(limit=3)
    assert a == b and a is not b and hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert sorted([c, a]) == sorted([a, c])


def test_json_round_trip_of_nested_tasks() -> None:
    """`model_dump_json`/`model_validate_json` round-trip nested upstream tasks."""
    task = Doubled(source=get_sum(integers=get_range(limit=4)))
    again = Doubled.model_validate_json(task.model_dump_json())
    assert again == task and again.id == task.id
    assert type(again.source) is type(task.source)


def test_json_round_trip_of_polymorphic_tasks() -> None:
    """A field typed with a base class round-trips a subclass instance."""
    task = Holder(inner=Child(x=1, y=2), many=(Base(x=1), Child(x=3), scale(value=1)))
    again = Holder.model_validate_json(task.model_dump_json())
    assert again == task
    assert type(again.inner) is Child
    assert [type(t) for t in again.many] == [Base, Child, type(scale(value=1))]
    sd.build(again)
    assert again.load() == 3


def test_subclass_field_rejects_another_family() -> None:
    """`sd.SubClass[Base]` rejects a task that is not a Base."""
    with pytest.raises(pydantic.ValidationError):
        Holder(inner=scale(value=1))


def test_conflicting_task_classes_are_an_error() -> None:
    """Two classes claiming one namespace and name are rejected."""

    class First(sd.Task[int], name_override="claimed"):
        def run(self) -> None:
            self.target().save(1)

    with pytest.raises(sd.TaskClassConflictError, match="claimed"):

        class Second(sd.Task[int], name_override="claimed"):
            def run(self) -> None:
                self.target().save(2)


def test_namespace_applies_to_the_module() -> None:
    """`sd.auto_namespace(__name__)` namespaces this module's tasks."""
    assert Base.get_namespace() == __name__
    assert Base(x=1).spec()["namespace"] == __name__


def test_class_version_attribute() -> None:
    """`__version__` on a class is the default version of its tasks."""

    class Versioned(sd.Task[int]):
        __version__ = "7"

        def run(self) -> None:
            self.target().save(7)

    assert Versioned().version == "7"
    assert Versioned().id != Versioned(version="8").id


def test_task_without_run_is_an_error() -> None:
    """A concrete task class must implement run() or run_aio()."""
    with pytest.raises(sd.TaskDefinitionError, match="run"):

        class Lazy(sd.Task[int]):
            pass


def test_auto_task_alias() -> None:
    """`sd.AutoTask[T]` is the older name of `sd.Task[T]`."""

    class Old(sd.AutoTask[int]):
        def run(self) -> None:
            self.output().save(5)

    task = Old()
    sd.build(task)
    assert task.output().load() == 5


def test_annotated_parameters_keep_their_metadata() -> None:
    """Annotated constraints on parameters are validated."""

    @sd.task
    def positive(n: Annotated[int, pydantic.Field(gt=0)]) -> int:
        return n

    with pytest.raises(pydantic.ValidationError):
        positive(n=0)
    assert positive(n=1).n == 1
