"""Task checks of the released stardag 0.28 (issue 12): the version guard, deep
`TaskLoads[T]` checks, `model_copy` with cached properties, class redefinition,
`call()`/`call_aio()`, and an immutable `StardagField`."""

from __future__ import annotations

import asyncio
import functools
import warnings
from typing import Annotated

import pydantic
import pytest

import stardag as sd

sd.auto_namespace(__name__)

MISMATCH = "STARDAG_POLYMORPHIC_ON_GENERIC_TYPE_MISMATCH"


class Versioned(sd.Task[str]):
    __version__ = "2"

    def run(self) -> str:
        return f"made by v{self.__version__}"


def test_a_task_of_an_old_version_is_refused() -> None:
    """Building version="1" with v2 code would store v2's output under v1's id."""
    old = Versioned(version="1")
    assert old.id != Versioned().id
    with pytest.raises(sd.TaskVersionMismatchError, match="__version__='2'") as info:
        sd.build(old)
    assert isinstance(info.value, ValueError)  # what 0.28 raised
    assert not old.complete()
    sd.build(Versioned())
    assert Versioned().load() == "made by v2"


@sd.task
def ints(n: int) -> list[int]:
    return list(range(n))


@sd.task
def strs(n: int) -> list[str]:
    return [str(i) for i in range(n)]


class Numbers(sd.LoadableTask[list[int]]):
    """A LoadableTask subclass: its load type comes from the generic argument."""

    def complete(self) -> bool:
        return True

    def run(self) -> None:
        pass

    def load(self) -> list[int]:
        return [1]


class Words(sd.LoadableTask[list[str]]):
    def complete(self) -> bool:
        return True

    def run(self) -> None:
        pass

    def load(self) -> list[str]:
        return ["a"]


class Total(sd.Task[int]):
    values: sd.TaskLoads[list[int]]

    def requires(self) -> sd.TaskStruct:
        return self.values

    def run(self) -> int:
        return sum(self.values.load())


class Labelled(sd.Task[int]):
    values: sd.TaskLoads[Annotated[list[int], "label"]]

    def run(self) -> int:
        return 0


@pytest.mark.parametrize("upstream", [strs(n=2), Words()])
def test_task_loads_checks_generics_deeply(
    upstream: sd.BaseTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """list[str] is not list[int]: a warning by default, an error or silence on request."""
    with pytest.warns(UserWarning, match=r"produces list\[str\].*list\[int\]"):
        Total(values=upstream)
    monkeypatch.setenv(MISMATCH, "raise")
    with pytest.raises(pydantic.ValidationError, match=r"list\[str\]"):
        Total(values=upstream)
    monkeypatch.setenv(MISMATCH, "ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Total(values=upstream)


def test_task_loads_accepts_matching_generics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decorator tasks, LoadableTask subclasses and Annotated all match when they should."""
    monkeypatch.setenv(MISMATCH, "raise")
    Total(values=ints(n=2))
    Total(values=Numbers())
    Labelled(values=ints(n=2))
    with pytest.raises(pydantic.ValidationError, match=r"list\[str\]"):
        Labelled(values=strs(n=2))


def test_type_compatibility_rules() -> None:
    """Unions, ints as floats, subclasses and Any, argument by argument."""
    from typing import Any

    from stardag.task._fields import compatible

    assert compatible(float, int) and compatible(list[float], list[int])
    assert compatible(int | str, int) and not compatible(int | str, bytes)
    assert compatible(dict[str, list[int]], dict[str, list[int]])
    assert not compatible(dict[str, list[int]], dict[str, list[str]])
    assert compatible(tuple[int, ...], tuple[int, ...]) and not compatible(
        tuple[int, ...], tuple[str, ...]
    )
    assert compatible(list[Any], list[int]) and compatible(list, list[int])
    assert not compatible(list[int], int)


def test_raw_values_stay_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the mismatch policy, a raw value is not a task."""
    monkeypatch.setenv(MISMATCH, "ignore")
    with pytest.raises(pydantic.ValidationError, match="got a raw list"):
        Total(values=[1, 2])  # type: ignore[arg-type]


class Costly(sd.Task[int]):
    n: int

    @functools.cached_property
    def doubled(self) -> int:
        return 2 * self.n

    def run(self) -> int:
        return self.doubled


def test_model_copy_recomputes_cached_properties() -> None:
    """model_copy(update=...) gives a fresh id and fresh cached_property values."""
    first = Costly(n=1)
    assert first.doubled == 2
    second = first.model_copy(update={"n": 5})
    assert second.doubled == 10 and second.id == Costly(n=5).id
    assert first.doubled == 2 and "doubled" not in second.model_dump()


def _define(value: int) -> type[sd.Task[int]]:
    class Redefined(sd.Task[int]):
        def run(self) -> int:
            return value

    return Redefined


def test_redefining_a_class_replaces_it() -> None:
    """A local class (a test, a notebook cell) defined again in one module replaces the old."""
    from stardag.task import _classes

    first = _define(1)

    class Redefined(sd.Task[int]):  # same module and name, another qualified name
        def run(self) -> int:
            return 2

    assert first.__qualname__ != Redefined.__qualname__
    assert _classes.resolve(__name__, "Redefined") is Redefined


def test_another_module_claiming_the_name_still_raises() -> None:
    """Two modules claiming one namespace and name is a conflict."""
    namespace: dict[str, object] = {"sd": sd, "__name__": "elsewhere"}
    source = (
        "class Clash(sd.Task[int], namespace_override=NS):\n"
        "    def run(self) -> int:\n"
        "        return 1\n"
    )
    exec(source, {**namespace, "NS": "clash"})
    with pytest.raises(sd.TaskClassConflictError, match="Clash"):
        exec(source, {**namespace, "__name__": "other_place", "NS": "clash"})


@sd.task
async def fetch_async(x: int) -> int:
    return x


def test_call_and_call_aio_say_which_to_use() -> None:
    """.call() on an async task and .call_aio() on a sync one are TypeErrors."""
    with pytest.raises(TypeError, match=r"call_aio"):
        fetch_async.call(1)
    with pytest.raises(TypeError, match=r"ints\.call\("):
        asyncio.run(ints.call_aio(3))
    assert ints.call(2) == [0, 1]
    assert asyncio.run(fetch_async.call_aio(4)) == 4


class Yielding(sd.Task[int]):
    async def run_aio(self):  # type: ignore[no-untyped-def]  # an async generator
        yield ints(n=1)


def test_run_on_an_async_generator_task_explains() -> None:
    """run() cannot drive an async generator; the error says why and what to do."""
    with pytest.raises(NotImplementedError, match=r"async generator.*sd\.build"):
        Yielding().run()


def test_stardag_field_is_immutable_and_compares_by_value() -> None:
    """StardagField is a value; the removed 0.28 options name their replacement."""
    option = sd.StardagField(significant=False)
    assert option == sd.StardagField(significant=False) != sd.StardagField()
    assert hash(option) == hash(sd.StardagField(significant=False))
    assert sd.StardagField(3) == sd.StardagField(3) != sd.StardagField(4)
    with pytest.raises(AttributeError, match="immutable"):
        option.significant = True  # type: ignore[misc]
    for removed in ("hash_exclude", "significance"):
        with pytest.raises(TypeError, match="significant=False"):
            sd.StardagField(**{removed: True})
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        sd.StardagField(colour=1)
