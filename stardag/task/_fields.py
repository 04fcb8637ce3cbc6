"""Field types that hold tasks: `TaskLoads[T]`, `SubClass[X]` and `Depends[T]`.

A task-holding field accepts a task object, or the JSON form of one (with its
`__namespace`/`__name` discriminators, resolved through the class registry), so
`model_validate_json(task.model_dump_json())` rebuilds polymorphic upstreams.
A raw value where a task is required is a `ValidationError` that says so.
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

from stardag.task import _classes
from stardag.task._base import NAME_KEY, NAMESPACE_KEY, BaseTask, LoadableTask

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


def _output_type(task: BaseTask) -> Any:
    return getattr(type(task), "__stardag_output_type__", None)


def _check_loads(task: BaseTask, loads: Any) -> None:
    if not callable(getattr(task, "load", None)):
        raise ValueError(f"{type(task).__qualname__} has no load(), so it cannot provide a value")
    produced = _output_type(task)
    comparable = isinstance(produced, type) and isinstance(loads, type) and loads is not object
    if comparable and not (issubclass(produced, loads) or (loads is float and produced is int)):
        raise ValueError(
            f"{type(task).__qualname__} produces {produced.__qualname__}, "
            f"but a task producing {loads.__qualname__} is required"
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
