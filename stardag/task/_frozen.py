"""Frozen containers for task parameters: a task's id hashes its parameters, so none may change.

Parameters are validated by Pydantic into fresh lists, dicts and sets; the task then
holds them frozen, all the way down: `FrozenList` and `FrozenDict` read like the list
and dict they replace (and compare equal to them), and refuse every change with a
`TypeError` that says how to get a changed task. Sets become frozensets. A parameter
changed in place could otherwise leave a task whose id describes other values.
"""

from __future__ import annotations

from typing import Any, NoReturn

_HOW = (
    "task parameters cannot change (the task id hashes them); "
    "make a new task instead, e.g. task.model_copy(update={...})"
)


def _refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise TypeError(_HOW)


class FrozenList(list[Any]):
    """A list that refuses changes: a task parameter."""

    __slots__ = ()
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))


class FrozenDict(dict[Any, Any]):
    """A dict that refuses changes: a task parameter."""

    __slots__ = ()
    pop = popitem = clear = update = setdefault = _refuse
    __setitem__ = __delitem__ = __ior__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


CONTAINERS = (list, dict, set, tuple)


def freeze(value: Any) -> Any:
    """`value` with every list, dict and set in it frozen (the same object if nothing was)."""
    kind = type(value)
    if kind is list:
        return FrozenList([freeze(v) for v in value])
    if kind is dict:
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if kind is set:
        return frozenset(value)
    if kind is tuple:
        items = tuple(freeze(v) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value
