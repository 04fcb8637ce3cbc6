"""Tasks: Pydantic models whose significant fields hash to a deterministic id.

`BaseTask` is the root: it computes the id when the task is instantiated (so a
parameter with no canonical encoding fails right there, naming the field),
compares and hashes by id, and registers every concrete class under its
(namespace, name). `LoadableTask` adds `load()`, `TargetTask` a user-defined
`target()` whose existence is completeness.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import inspect
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeAlias, TypeVar, Union

from pydantic import BaseModel, ConfigDict, model_serializer, model_validator
from pydantic.fields import FieldInfo

from stardag import _hashing
from stardag._errors import CanonicalEncodingError, TaskDefinitionError, TaskVersionMismatchError
from stardag.task import _classes
from stardag.task._frozen import CONTAINERS, freeze

if TYPE_CHECKING:
    from pydantic import SerializerFunctionWrapHandler

# One fields-set per distinct set of field names, shared by every task that has it.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}
NAMESPACE_KEY = "__namespace"
NAME_KEY = "__name"

TaskStruct: TypeAlias = Union["BaseTask", Sequence["TaskStruct"], Mapping[str, "TaskStruct"]]
TargetT = TypeVar("TargetT")
LoadedT_co = TypeVar("LoadedT_co", covariant=True)


class StardagField:
    """Field options, attached as `Annotated[T, sd.StardagField(significant=False)]`.

    Args:
        compat_default: a value that, when the field holds it, leaves the field out
            of the id, so adding a field with this default keeps existing ids.
        significant: whether the field is part of the task id (default True). A
            parameter that changes how the work runs but never its output (a
            thread count, a log level) is `significant=False`.
    """

    _UNSET: ClassVar[object] = object()
    __slots__ = ("compat_default", "significant")
    compat_default: Any
    significant: bool

    def __init__(
        self, compat_default: Any = _UNSET, *, significant: bool = True, **removed: Any
    ) -> None:
        for option in removed:
            if option in _REMOVED_FIELD_OPTIONS:
                raise TypeError(
                    f"StardagField({option}=...) was removed (as in stardag 0.28); "
                    "use StardagField(significant=False) to keep a parameter out of the task id"
                )
            raise TypeError(f"StardagField() got an unexpected keyword argument {option!r}")
        if not isinstance(significant, bool):
            raise TypeError(f"StardagField(significant=...) must be a bool, got {significant!r}")
        if compat_default is not StardagField._UNSET and not significant:
            raise TypeError("compat_default only makes sense on a significant field")
        object.__setattr__(self, "compat_default", compat_default)
        object.__setattr__(self, "significant", significant)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"StardagField is immutable; make a new one to change {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"StardagField is immutable; cannot delete {name!r}")

    def _key(self) -> tuple[Any, ...]:
        unset = self.compat_default is StardagField._UNSET
        return (self.significant, unset, None if unset else self.compat_default)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StardagField):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        try:
            return hash(self._key())
        except TypeError:  # an unhashable compat_default
            return hash((self.significant, repr(self.compat_default)))

    def __repr__(self) -> str:
        if self.compat_default is StardagField._UNSET:
            return f"StardagField(significant={self.significant})"
        return f"StardagField({self.compat_default!r}, significant={self.significant})"


_REMOVED_FIELD_OPTIONS = ("hash_exclude", "significance")


def _field_option(field: FieldInfo) -> StardagField | None:
    for meta in field.metadata:
        if isinstance(meta, StardagField):
            return meta
    return None


class BaseTask(BaseModel):
    """The root of every task class: parameters are fields, identity is their hash.

    Subclasses implement `complete()` and `run()` (or `run_aio()`), and may
    return their dependencies from `requires()`. `run()` may be a generator that
    yields tasks (dynamic dependencies): the build completes them before it resumes.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    __version__: ClassVar[str] = ""
    __stardag_abstract__: ClassVar[bool] = True
    # Filled per concrete class in __pydantic_init_subclass__.
    __stardag_namespace__: ClassVar[str] = ""
    __stardag_name__: ClassVar[str] = ""
    __stardag_id_fields__: ClassVar[tuple[tuple[str, Any], ...]] = ()
    __stardag_overrides__: ClassVar[tuple[str | None, str | None]] = (None, None)
    if TYPE_CHECKING:  # slots below; ClassVar so neither Pydantic nor mypy sees fields
        _sd_id: ClassVar[str]

    # Identity lives in slots, not Pydantic private attributes: reading `id` is on
    # every hot path. Copies and unpickled tasks lack the slots and recompute them.
    # The spec is not kept: a DAG of 100,000 tasks would hold 100,000 of them, and a
    # build asks for a task's spec twice (its record, its registry row); `spec()`
    # makes it again from the fields, which are frozen (the id hashed them once).
    __slots__ = ("_sd_id", "_sd_run")

    version: str = ""

    def __init_subclass__(
        cls,
        name_override: str | None = None,
        namespace_override: str | None = None,
        **kwargs: Any,
    ) -> None:
        # Pydantic passes class keywords on to object.__init_subclass__, which rejects them.
        cls.__stardag_overrides__ = (name_override, namespace_override)
        super().__init_subclass__(**kwargs)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__()
        if cls.__pydantic_generic_metadata__["origin"] is not None:
            return  # a parametrized alias such as Task[int]: not a task class of its own
        if cls.__dict__.get("__stardag_abstract__", False) or abc.ABC in cls.__bases__:
            return
        name_override, namespace_override = cls.__dict__.get("__stardag_overrides__", (None, None))
        cls.__stardag_name__ = name_override or cls.__name__
        cls.__stardag_namespace__ = _resolve_namespace(cls, namespace_override)
        cls.__stardag_id_fields__ = _id_fields(cls)
        _check_runnable(cls)
        _classes.register(cls, cls.__stardag_namespace__, cls.__stardag_name__)

    @model_validator(mode="before")
    @classmethod
    def _strip_discriminators(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if NAME_KEY in data or NAMESPACE_KEY in data:
            data = {k: v for k, v in data.items() if k not in (NAME_KEY, NAMESPACE_KEY)}
        if "version" not in data and cls.__version__:
            data = {**data, "version": cls.__version__}
        return data

    def model_post_init(self, context: Any, /) -> None:
        # Tasks are frozen, so Pydantic never adds to an instance's fields-set (a copy
        # gets a set of its own): tasks with the same set share one, not a set each.
        fields_set = self.__pydantic_fields_set__
        shared = _FIELDS_SETS.setdefault(frozenset(fields_set), fields_set)
        if shared is not fields_set:
            object.__setattr__(self, "__pydantic_fields_set__", shared)
        self._identify()

    def _identify(self) -> None:
        object.__setattr__(self, "_sd_id", _hashing.task_id_of(self._make_spec()))

    def _make_spec(self) -> dict[str, Any]:
        """The canonical spec of this task's fields (what `id` hashes)."""
        params: dict[str, Any] = {}
        for name, compat_default in type(self).__stardag_id_fields__:
            value = getattr(self, name)
            if type(value) in CONTAINERS:  # the id hashes it: it must never change
                value = freeze(value)
                object.__setattr__(self, name, value)
            if compat_default is not StardagField._UNSET and value == compat_default:
                continue
            try:
                params[name] = _hashing.encode(value)
            except _hashing.Unencodable as exc:
                raise CanonicalEncodingError(
                    f"{type(self).__qualname__}.{name}: {exc}. Task parameters must have a "
                    "canonical encoding (JSON types, tuples, sets, enums, dates, paths, "
                    "Pydantic models, dataclasses or tasks); mark the field "
                    "StardagField(significant=False) to keep it out of the id.",
                    field=name,
                ) from None
        return {
            "key_schema": _hashing.KEY_SCHEMA,
            "namespace": type(self).__stardag_namespace__,
            "name": type(self).__stardag_name__,
            "version": self.version,
            "params": params,
        }

    @model_serializer(mode="wrap")
    def _serialize_with_discriminators(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            cls = type(self)
            return {
                NAMESPACE_KEY: cls.__stardag_namespace__,
                NAME_KEY: cls.__stardag_name__,
                **data,
            }
        return data

    @property
    def id(self) -> str:
        """The task id: blake3 hex of the canonical spec."""
        try:
            return self._sd_id
        except AttributeError:
            self._identify()
            return self._sd_id

    @property
    def task_id(self) -> str:
        """Alias of `id`."""
        return self.id

    def spec(self) -> dict[str, Any]:
        """The canonical spec that `id` hashes (a new dict on each call)."""
        return self._make_spec()

    @property
    def _run_state(self) -> dict[str, Any] | None:
        """Per-run state kept by the build engine (the dynamic dependencies yielded)."""
        return getattr(self, "_sd_run", None)

    def _set_run_state(self, state: dict[str, Any] | None) -> None:
        object.__setattr__(self, "_sd_run", state)

    @classmethod
    def get_name(cls) -> str:
        """The task name (the class name unless overridden)."""
        return cls.__stardag_name__

    @classmethod
    def get_namespace(cls) -> str:
        """The task namespace (`""` unless set)."""
        return cls.__stardag_namespace__

    def __hash__(self) -> int:
        return hash(self.id)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BaseTask):
            return self.id == other.id
        return NotImplemented

    def __lt__(self, other: BaseTask) -> bool:
        return self.id < other.id

    @abc.abstractmethod
    def complete(self) -> bool:
        """Whether the task's output exists."""

    async def complete_aio(self) -> bool:
        """Async `complete()`; delegates to it unless overridden."""
        return self.complete()

    def requires(self) -> TaskStruct | None:
        """The tasks this task needs, as a task, a list or a dict of them."""
        return None

    def _check_before_run(self) -> None:
        """Checked by the build just before `run()`/`run_aio()`; override to add checks.

        By default it refuses a task whose `version` is not its class's current
        `__version__`: today's code must not write an output under an old version's id.
        """
        current = type(self).__version__
        if self.version != current:
            raise TaskVersionMismatchError(
                f"task {type(self).get_name()} ({self.id[:12]}) has version={self.version!r}, "
                f"but class {type(self).__qualname__} is at __version__={current!r}; "
                f"running today's code would store its output under the old version's id. "
                f"Make the task without version= (or with version={current!r}), or restore "
                "the old code to rebuild the old version."
            )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        """A copy with `update` applied; its id and `functools.cached_property` values are fresh."""
        copy = super().model_copy(update=update, deep=deep)
        for name in _cached_properties(type(self)):
            copy.__dict__.pop(name, None)
        return copy

    def run(self) -> Any:
        """Do the work (sync). May `yield` tasks that must be built first."""
        if _overrides(type(self), "run_aio"):
            if inspect.isasyncgenfunction(type(self).run_aio):
                raise NotImplementedError(
                    f"{type(self).__qualname__}.run_aio() is an async generator (it yields "
                    "dynamic dependencies), which cannot run from sync run(): a sync caller "
                    "cannot wait for the tasks it yields. Build it with sd.build(task) (or "
                    "sd.build_aio), or await task.run_aio() yourself."
                )
            return _run_async_from_sync(self)
        raise NotImplementedError(
            f"{type(self).__qualname__} implements neither run() nor run_aio()"
        )

    async def run_aio(self) -> Any:
        """Do the work (async); delegates to `run()` unless overridden."""
        return self.run()

    @classmethod
    def has_dynamic_deps(cls) -> bool:
        """Whether `run()`/`run_aio()` is a generator that yields dependencies."""
        return inspect.isgeneratorfunction(cls.run) or inspect.isasyncgenfunction(cls.run_aio)


_CACHED: dict[type, tuple[str, ...]] = {}


def _cached_properties(cls: type) -> tuple[str, ...]:
    """The names of the `functools.cached_property` attributes of a class (its MRO)."""
    found = _CACHED.get(cls)
    if found is None:
        names = {
            name
            for klass in cls.__mro__
            for name, value in vars(klass).items()
            if isinstance(value, functools.cached_property)
        }
        found = _CACHED[cls] = tuple(sorted(names))
    return found


def _overrides(cls: type, method: str) -> bool:
    return getattr(cls, method) is not getattr(BaseTask, method)


def _run_async_from_sync(task: BaseTask) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(task.run_aio())
    raise RuntimeError(
        f"{type(task).__qualname__} only implements run_aio(); "
        "await task.run_aio() instead of calling run() inside an event loop"
    )


def _resolve_namespace(cls: type[BaseTask], override: str | None) -> str:
    if override is not None:
        return override
    explicit = getattr(cls, "__namespace__", None)
    if isinstance(explicit, str):
        return explicit
    return _classes.namespace_for_module(cls.__module__)


def _id_fields(cls: type[BaseTask]) -> tuple[tuple[str, Any], ...]:
    fields = []
    for name, info in cls.model_fields.items():
        if name == "version":
            continue
        option = _field_option(info)
        if option is not None and not option.significant:
            continue
        default = option.compat_default if option is not None else StardagField._UNSET
        fields.append((name, default))
    return tuple(sorted(fields))


def _check_runnable(cls: type[BaseTask]) -> None:
    if not (_overrides(cls, "run") or _overrides(cls, "run_aio")):
        raise TaskDefinitionError(
            f"task class {cls.__qualname__} must implement run() or run_aio()"
        )


class LoadableTask(BaseTask, Generic[LoadedT_co]):
    """A task whose output can be loaded as a `T`: what `sd.TaskLoads[T]` accepts."""

    __stardag_abstract__: ClassVar[bool] = True

    def load(self) -> LoadedT_co:
        """Load the task's output."""
        raise NotImplementedError(f"{type(self).__qualname__} does not implement load()")

    async def load_aio(self) -> LoadedT_co:
        """Async `load()`; delegates to it unless overridden."""
        return self.load()


class TargetTask(BaseTask, Generic[TargetT]):
    """A task with a user-defined `target()`; it is complete when the target exists."""

    __stardag_abstract__: ClassVar[bool] = True

    @abc.abstractmethod
    def target(self) -> TargetT:
        """The task's output target (anything with `exists()`)."""

    def output(self) -> TargetT:
        """Alias of `target()` (the older spelling)."""
        return self.target()

    def complete(self) -> bool:
        """Whether the target exists."""
        exists = getattr(self.target(), "exists", None)
        if exists is None:
            raise TaskDefinitionError(f"{type(self).__qualname__}.target() has no exists()")
        return bool(exists())

    def load(self) -> Any:
        """Load through the target, when the target can load."""
        return self.target().load()  # type: ignore[attr-defined]  # duck-typed target


def flatten_task_struct(struct: TaskStruct | None) -> list[BaseTask]:
    """Every task in a task, a list/tuple of tasks or a dict of them, in order."""
    if struct is None:
        return []
    if isinstance(struct, BaseTask):
        return [struct]
    out: list[BaseTask] = []
    stack: list[Any] = [struct]
    while stack:
        item = stack.pop()
        if isinstance(item, BaseTask):
            out.append(item)
        elif isinstance(item, Mapping):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, (list, tuple, set, frozenset, Generator)):
            stack.extend(reversed(list(item)))
        else:
            raise TaskDefinitionError(
                f"requires() returned {type(item).__qualname__}; expected tasks, "
                "lists, tuples or dicts of tasks"
            )
    return out


_hashing.register_encoder(BaseTask, lambda task: {"$task": task.id})
