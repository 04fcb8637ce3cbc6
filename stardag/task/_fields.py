"""Field types that hold tasks: `TaskLoads[T]`, `SubClass[X]` and `Depends[T]`.

A task-holding field accepts a task object, or the JSON form of one (with its
`__namespace`/`__name` discriminators, resolved through the class registry), so
`model_validate_json(task.model_dump_json())` rebuilds polymorphic upstreams.
A raw value where a task is required is a `ValidationError` that says so.
"""

from __future__ import annotations

import os
import types
import typing
import warnings
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

from stardag.task import _classes
from stardag.task._base import NAME_KEY, NAMESPACE_KEY, BaseTask, LoadableTask
from stardag.task._polymorphic import Polymorphic, PolymorphicRoot

T = typing.TypeVar("T")


def _as_task(value: Any, base: type) -> BaseTask | None:
    """The task that `value` is or describes, or None if it is not task-like."""
    if isinstance(value, BaseTask):
        task = value
    elif isinstance(value, dict) and NAME_KEY in value and NAMESPACE_KEY in value:
        cls = _classes.resolve(value[NAMESPACE_KEY], value[NAME_KEY])
        task = cls.model_validate(value)
    else:
        return None
    if not isinstance(task, base):
        raise ValueError(
            f"expected a task of type {base.__qualname__}, got {type(task).__qualname__}"
        )
    return task


def _dump_task(task: BaseTask, info: core_schema.SerializationInfo) -> Any:
    return task.model_dump(mode="json" if info.mode_is_json() else "python")


MISMATCH_ENV = "STARDAG_POLYMORPHIC_ON_GENERIC_TYPE_MISMATCH"


class TaskLoadsMismatchWarning(UserWarning):
    """A `TaskLoads[T]` field got a task whose declared output type is not a `T`."""


def _output_type(task: BaseTask) -> Any:
    """What `task.load()` gives, as declared (`Task[T]`, `LoadableTask[T]`, `@sd.task`'s return)."""
    declared = getattr(type(task), "__stardag_output_type__", None)
    if declared is not None and declared is not Any:
        return declared
    for klass in type(task).__mro__:
        meta = getattr(klass, "__pydantic_generic_metadata__", None)
        if not meta or not meta["args"] or meta["origin"] is None:
            continue
        if isinstance(meta["origin"], type) and issubclass(meta["origin"], LoadableTask):
            first = meta["args"][0]
            return None if isinstance(first, typing.TypeVar) else first
    return None


def _check_loads(task: BaseTask, loads: Any) -> None:
    if not callable(getattr(task, "load", None)):
        raise ValueError(f"{type(task).__qualname__} has no load(), so it cannot provide a value")
    produced = _output_type(task)
    if produced is None or compatible(loads, produced):
        return
    policy = os.environ.get(MISMATCH_ENV, "warn").strip().lower() or "warn"
    if policy == "ignore":
        return
    message = (
        f"{type(task).__qualname__} produces {_type_name(produced)}, but a task producing "
        f"{_type_name(loads)} is required (set {MISMATCH_ENV}=ignore to silence, =raise to refuse)"
    )
    if policy == "raise":
        raise ValueError(message)
    warnings.warn(message, TaskLoadsMismatchWarning, stacklevel=2)


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated and typing.get_args(tp):
        tp = typing.get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def compatible(expected: Any, actual: Any) -> bool:
    """Whether a value of type `actual` is a `expected`, as far as the types say.

    Unwraps `Annotated`, compares generics argument by argument (`list[int]` is not
    `list[str]`), honours unions, and an `int` is a `float`. Only a clear mismatch
    is False: `Any`, type variables and forms it cannot judge are compatible.
    """
    expected, actual = _unwrap(expected), _unwrap(actual)
    if expected is Any or actual is Any or expected is object:
        return True
    if isinstance(expected, typing.TypeVar) or isinstance(actual, typing.TypeVar):
        return True
    if expected == actual:
        return True
    if _is_union(actual):
        return all(compatible(expected, member) for member in typing.get_args(actual))
    if _is_union(expected):
        return any(compatible(member, actual) for member in typing.get_args(expected))
    e_origin, a_origin = typing.get_origin(expected), typing.get_origin(actual)
    e_class = e_origin if e_origin is not None else expected
    a_class = a_origin if a_origin is not None else actual
    if not (isinstance(e_class, type) and isinstance(a_class, type)):
        return True  # Literal, NewType and friends: not judged here
    if not (issubclass(a_class, e_class) or (e_class is float and a_class is int)):
        return False
    e_args, a_args = typing.get_args(expected), typing.get_args(actual)
    if not e_args or not a_args or e_origin is not a_origin or len(e_args) != len(a_args):
        return True  # bare `list`, or a subclass's own parameters: cannot compare further
    return all(
        e is a if Ellipsis in (e, a) else compatible(e, a)
        for e, a in zip(e_args, a_args, strict=True)
    )


class _TaskField:
    """Pydantic metadata for a field that must hold a task (of `base`, loading `loads`)."""

    def __init__(self, base: type, loads: Any = None) -> None:
        self.base = base
        self.loads = loads

    def validate(self, value: Any) -> BaseTask:
        task = _as_task(value, self.base)
        if task is None:
            wanted = (
                f"a task whose load() gives {_type_name(self.loads)}"
                if self.loads
                else (f"a {self.base.__qualname__} task")
            )
            raise ValueError(
                f"expected {wanted}, got a raw {type(value).__qualname__} value; "
                "pass a task that produces it"
            )
        if self.loads is not None:
            _check_loads(task, self.loads)
        return task

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_plain_validator_function(
            self.validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                _dump_task, info_arg=True
            ),
        )

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> Any:
        return {"type": "object", "description": "a task (with __namespace and __name)"}


class _ValueOrTask:
    """Pydantic metadata for an `@sd.task` parameter: a plain value or a task producing one."""

    def __init__(self, loads: Any) -> None:
        self.task_field = _TaskField(LoadableTask, loads)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        value_schema = handler(source)

        def validate(value: Any, next_: core_schema.ValidatorFunctionWrapHandler) -> Any:
            if isinstance(value, BaseTask) or (
                isinstance(value, dict) and NAME_KEY in value and NAMESPACE_KEY in value
            ):
                return self.task_field.validate(value)
            return next_(value)

        def serialize(
            value: Any,
            next_: core_schema.SerializerFunctionWrapHandler,
            info: core_schema.SerializationInfo,
        ) -> Any:
            if isinstance(value, BaseTask):
                return _dump_task(value, info)
            return next_(value)

        return core_schema.no_info_wrap_validator_function(
            validate,
            value_schema,
            serialization=core_schema.wrap_serializer_function_ser_schema(
                serialize, schema=value_schema, info_arg=True
            ),
        )


def _type_name(tp: Any) -> str:
    return tp.__qualname__ if isinstance(tp, type) else repr(tp)


class _TaskLoadsFactory:
    """`sd.TaskLoads[T]`: a field holding any task whose `load()` gives a `T`."""

    def __getitem__(self, loads: Any) -> Any:
        return Annotated[LoadableTask, _TaskField(BaseTask, loads)]


class _SubClassFactory:
    """`sd.SubClass[X]`: a field holding an instance of task class `X` or a subclass."""

    def __getitem__(self, base: Any) -> Any:
        origin = typing.get_origin(base) or base
        pydantic_origin = getattr(base, "__pydantic_generic_metadata__", {}).get("origin")
        if isinstance(origin, type) and issubclass(origin, PolymorphicRoot):
            return Annotated[base, Polymorphic()]
        return Annotated[base, _TaskField(pydantic_origin or origin)]


class _DependsMarker:
    """Marks an `@sd.task` parameter as a dependency: `sd.Depends[T]`."""


if TYPE_CHECKING:
    TaskLoads = Annotated[LoadableTask[T], "TaskLoads"]
    SubClass = Annotated[T, "SubClass"]
    Depends = Annotated[T, _DependsMarker]
else:
    TaskLoads = _TaskLoadsFactory()
    SubClass = _SubClassFactory()
    Depends = Annotated[T, _DependsMarker]


def param_annotation(annotation: Any) -> Any:
    """The field annotation for an `@sd.task` parameter annotated `annotation`."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Annotated and _DependsMarker in args:
        rest = tuple(a for a in args[1:] if a is not _DependsMarker)
        loads = Annotated.__class_getitem__((args[0], *rest)) if rest else args[0]
        return _TaskLoadsFactory()[loads]
    return Annotated[annotation, _ValueOrTask(annotation)]
