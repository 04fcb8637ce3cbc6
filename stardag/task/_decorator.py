"""`@sd.task`: a plain function becomes a task class.

Parameters become fields; `sd.Depends[T]` parameters take a task producing `T`
and receive its loaded value; plain parameters take a value or a task that
produces one. The return annotation picks the serializer.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from pydantic import create_model

from stardag._errors import MissingReturnAnnotationError, TaskDefinitionError
from stardag.task._base import BaseTask, LoadableTask
from stardag.task._fields import param_annotation
from stardag.task._stored import Task

T = TypeVar("T")


class FunctionTask(Task[T]):
    """The base of classes made by `@sd.task`; `call()` runs the plain function."""

    __stardag_abstract__: ClassVar[bool] = True
    __stardag_func__: ClassVar[Callable[..., Any]]
    __stardag_is_async__: ClassVar[bool] = False

    if TYPE_CHECKING:  # the parameters are the wrapped function's; checkers see keywords

        def __init__(self, **params: Any) -> None: ...

    @classmethod
    def call(cls, *args: Any, **kwargs: Any) -> Any:
        """Run the plain sync function (no store, no build).

        Raises:
            TypeError: the function is async; `await Cls.call_aio(...)` it instead.
        """
        if cls.__stardag_is_async__:
            raise TypeError(
                f"{cls.__name__}.call() cannot run the async function "
                f"{cls.__stardag_func__.__qualname__}; use 'await {cls.__name__}.call_aio(...)'"
            )
        return cls.__stardag_func__(*args, **kwargs)

    @classmethod
    async def call_aio(cls, *args: Any, **kwargs: Any) -> Any:
        """Await the plain async function (no store, no build).

        Raises:
            TypeError: the function is sync; use `Cls.call(...)` instead.
        """
        if not cls.__stardag_is_async__:
            raise TypeError(
                f"{cls.__name__}.call_aio() cannot run the sync function "
                f"{cls.__stardag_func__.__qualname__}; use '{cls.__name__}.call(...)'"
            )
        return await cls.__stardag_func__(*args, **kwargs)

    def requires(self) -> dict[str, BaseTask] | None:
        found = {}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if isinstance(value, BaseTask):
                found[name] = value
        return found or None

    def _inputs(self) -> dict[str, Any]:
        inputs = {}
        for name in _field_names(type(self)):
            if name != "version":
                value = getattr(self, name)
                inputs[name] = value.load() if isinstance(value, LoadableTask) else value
        return inputs

    def run(self) -> None:
        if type(self).__stardag_is_async__:
            super().run()  # runs run_aio() in a fresh event loop
            return
        self._save(type(self).__stardag_func__(**self._inputs()))

    async def run_aio(self) -> None:
        if not type(self).__stardag_is_async__:
            self.run()
            return
        self._save(await type(self).__stardag_func__(**self._inputs()))


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type[FunctionTask[Any]]) -> tuple[str, ...]:
    """The class's field names, worked out once (every task asks twice per build)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(cls.model_fields)
    return names


@overload
def task(_func: Callable[..., Any], /) -> type[FunctionTask[Any]]: ...


@overload
def task(
    *,
    name: str | None = None,
    version: str = "",
    target_root_key: str | None = None,
    executor: str | None = None,
) -> Callable[[Callable[..., Any]], type[FunctionTask[Any]]]: ...


def task(
    _func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    version: str = "",
    target_root_key: str | None = None,
    executor: str | None = None,
) -> Any:
    """Turn a function into a task class: `@sd.task` or `@sd.task(name=..., version=...)`.

    `executor` names the executor of a `RoutedTaskExecutor` that should run the task
    (its `__stardag_executor__` hint; not part of the task id).
    """

    def wrap(func: Callable[..., Any]) -> type[FunctionTask[Any]]:
        cls = _make_task_class(func, name=name, version=version, target_root_key=target_root_key)
        if executor is not None:
            cls.__stardag_executor__ = executor  # type: ignore[attr-defined]  # routing hint
        return cls

    return wrap if _func is None else wrap(_func)


def _make_task_class(
    func: Callable[..., Any], *, name: str | None, version: str, target_root_key: str | None
) -> type[FunctionTask[Any]]:
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise TaskDefinitionError(
            f"@sd.task cannot wrap the generator {func.__qualname__}; for dynamic "
            "dependencies subclass sd.Task and yield tasks from run()"
        )
    hints = typing.get_type_hints(func, include_extras=True)
    if "return" not in hints:
        raise MissingReturnAnnotationError(
            f"@sd.task {func.__qualname__} has no return annotation; add one (e.g. `-> int`): "
            "it picks how the output is serialized"
        )
    fields: dict[str, Any] = {"version": (str, version)}
    for param in inspect.signature(func).parameters.values():
        if param.name not in hints:
            raise TaskDefinitionError(
                f"@sd.task {func.__qualname__}: parameter {param.name!r} has no annotation"
            )
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (param_annotation(hints[param.name]), default)
    namespace: dict[str, Any] = {
        "__stardag_func__": staticmethod(func),
        "__stardag_is_async__": inspect.iscoroutinefunction(func),
        "__version__": version,
        "__doc__": func.__doc__,
    }
    if target_root_key is not None:
        namespace["_target_root_key"] = target_root_key
    base: type[FunctionTask[Any]] = FunctionTask.__class_getitem__(hints["return"])  # type: ignore[assignment]  # Pydantic generic
    cls: type[FunctionTask[Any]] = create_model(
        name or func.__name__,
        __base__=base,
        __module__=func.__module__,
        **fields,
    )
    for key, value in namespace.items():
        setattr(cls, key, value)
    return cls
