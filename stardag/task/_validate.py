"""Load/save validators: `Task[Annotated[T, MyValidator()]]` checks every value saved and loaded.

The invariant: a task's validators run, in their `Annotated` order, on each value
its output saves (before it is serialized, so a rejected value is never stored)
and on each value loaded (after the digest is verified). A validator returns the
value (possibly transformed) or raises. As in the released stardag, a validator is
a `LoadValidator` or any object whose class sets `stardag_load_validator = True`
and has a `validate(value)` method.
"""

from __future__ import annotations

import abc
import typing
from typing import Annotated, Any, Generic, TypeVar

T = TypeVar("T")


class LoadValidator(Generic[T], abc.ABC):
    """A check on a task's value, attached as `Task[Annotated[T, MyValidator()]]`."""

    @abc.abstractmethod
    def validate(self, value: T) -> T:
        """Return `value` (or a transformed one), or raise to reject it."""


def is_load_validator(candidate: Any) -> bool:
    """Whether `candidate` is a validator (see the module docstring)."""
    if isinstance(candidate, LoadValidator):
        return True
    return bool(getattr(type(candidate), "stardag_load_validator", False)) and callable(
        getattr(candidate, "validate", None)
    )


def validators_of(output_type: Any) -> tuple[Any, ...]:
    """The validators in an output type's `Annotated` metadata, in order."""
    if typing.get_origin(output_type) is not Annotated:
        return ()
    return tuple(m for m in typing.get_args(output_type)[1:] if is_load_validator(m))


def run_validators(validators: tuple[Any, ...], value: Any) -> Any:
    """`value` through each validator in turn."""
    for validator in validators:
        value = validator.validate(value)
    return value
