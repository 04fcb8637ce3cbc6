"""`sd.PolymorphicRoot`: plain Pydantic models whose subclasses survive a JSON round trip.

The invariant: a subclass of a polymorphic root dumps with its `__namespace` and
`__name` (as tasks do), and validating that dump, through the root or through a
field annotated `sd.SubClass[Root]` (or `Annotated[Root, sd.Polymorphic()]`),
gives back an instance of the same subclass, never a silently truncated root.
Each family (the classes below one direct subclass of `PolymorphicRoot`) has its
own registry of (namespace, name), filled as classes are defined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import (
    BaseModel,
    GetCoreSchemaHandler,
    model_serializer,
    model_validator,
)
from pydantic_core import core_schema

from stardag._errors import TaskDefinitionError
from stardag.task import _classes
from stardag.task._base import NAME_KEY, NAMESPACE_KEY

if TYPE_CHECKING:
    from pydantic import SerializerFunctionWrapHandler, ValidatorFunctionWrapHandler


class StardagBaseModel(BaseModel):
    """A plain Pydantic model for task parameters (the released stardag's base of models).

    Nothing beyond `pydantic.BaseModel`: a model parameter is part of the task id
    through its fields whatever its base class.
    """


class PolymorphicRoot(StardagBaseModel):
    """The root of a family of models told apart by `__namespace`/`__name` in their dumps.

    Subclass it once for the family (`class Shape(sd.PolymorphicRoot)`), then subclass
    that. Class keywords `name_override=` / `namespace_override=` and the class
    attribute `__namespace__` work as for tasks.
    """

    __polymorphic_family__: ClassVar[dict[tuple[str, str], type[PolymorphicRoot]]] = {}
    __polymorphic_id__: ClassVar[tuple[str, str]] = ("", "")

    def __init_subclass__(
        cls, name_override: str | None = None, namespace_override: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if PolymorphicRoot in cls.__bases__:
            cls.__polymorphic_family__ = {}  # a new family
        explicit = cls.__dict__.get("__namespace__")
        namespace = (
            namespace_override
            if namespace_override is not None
            else explicit
            if isinstance(explicit, str)
            else _classes.namespace_for_module(cls.__module__)
        )
        key = (namespace, name_override or cls.__name__)
        existing = cls.__polymorphic_family__.get(key)
        if existing is not None and (existing.__module__, existing.__name__) != (
            cls.__module__,
            cls.__name__,
        ):
            raise TaskDefinitionError(
                f"{cls.__module__}.{cls.__qualname__} claims namespace={key[0]!r} "
                f"name={key[1]!r} in its polymorphic family, which "
                f"{existing.__module__}.{existing.__qualname__} already has; "
                "give one of them name_override=... or namespace_override=..."
            )
        cls.__polymorphic_family__[key] = cls
        cls.__polymorphic_id__ = key

    @classmethod
    def resolve_subclass(cls, namespace: str, name: str) -> type[PolymorphicRoot]:
        """The family member registered as (namespace, name); it must be a `cls`."""
        found = cls.__polymorphic_family__.get((namespace, name))
        if found is None or not issubclass(found, cls):
            raise ValueError(
                f"no subclass of {cls.__qualname__} is registered as namespace={namespace!r} "
                f"name={name!r}; import the module that defines it first"
            )
        return found

    @model_validator(mode="wrap")
    @classmethod
    def _to_subclass(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(data, dict) and NAME_KEY in data:
            rest = {k: v for k, v in data.items() if k not in (NAME_KEY, NAMESPACE_KEY)}
            found = cls.resolve_subclass(str(data.get(NAMESPACE_KEY, "")), str(data[NAME_KEY]))
            if found is not cls:
                return found.model_validate(rest)
            return handler(rest)
        return handler(data)

    @model_serializer(mode="wrap")
    def _with_discriminators(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            namespace, name = type(self).__polymorphic_id__
            return {NAMESPACE_KEY: namespace, NAME_KEY: name, **data}
        return data


class Polymorphic:
    """`Annotated[Root, sd.Polymorphic()]`: the field takes any member of Root's family."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return ModelField(source).schema()


class ModelField:
    """Validation and dumps of a field holding any subclass of a polymorphic root `base`."""

    def __init__(self, base: type[PolymorphicRoot]) -> None:
        if not (isinstance(base, type) and issubclass(base, PolymorphicRoot)):
            raise TaskDefinitionError(f"{base!r} is not a subclass of sd.PolymorphicRoot")
        self.base = base

    def validate(self, value: Any) -> Any:
        if isinstance(value, self.base):
            return value
        if isinstance(value, dict):
            return self.base.model_validate(value)
        raise ValueError(f"expected a {self.base.__qualname__}, got {type(value).__qualname__}")

    def schema(self) -> Any:
        def dump(value: Any, info: core_schema.SerializationInfo) -> Any:
            return value.model_dump(mode="json" if info.mode_is_json() else "python")

        return core_schema.no_info_plain_validator_function(
            self.validate,
            serialization=core_schema.plain_serializer_function_ser_schema(dump, info_arg=True),
        )
