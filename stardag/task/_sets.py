"""`sd.HashableSet[T]`: a set parameter whose dumps are ordered, as in the released stardag.

The invariant: a set's place in the task id never depends on iteration order (the
id encoding sorts every set already); `HashSafeSetSerializer` makes the JSON dump of
the field sorted too, so a task's `model_dump_json()` is the same in every process.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import GetCoreSchemaHandler, TypeAdapter
from pydantic_core import core_schema

T = TypeVar("T")


class HashSafeSetSerializer:
    """Dumps a `set`/`frozenset` field as a list sorted by `sort_key` (default: its JSON)."""

    def __init__(self, sort_key: Callable[[Any], Any] | None = None) -> None:
        self.sort_key = sort_key

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        args = typing.get_args(source)
        items: TypeAdapter[Any] = TypeAdapter(args[0] if args else Any)
        sort_key = self.sort_key

        def dump(value: Any, info: core_schema.SerializationInfo) -> list[Any]:
            mode: typing.Literal["json", "python"] = "json" if info.mode_is_json() else "python"
            pairs = [(item, items.dump_python(item, mode=mode)) for item in value]
            pairs.sort(
                key=lambda pair: (
                    () if sort_key is None else (sort_key(pair[0]),),
                    json.dumps(items.dump_python(pair[0], mode="json"), sort_keys=True),
                )
            )
            return [dumped for _, dumped in pairs]

        return core_schema.no_info_after_validator_function(
            lambda value: value,
            handler(source),
            serialization=core_schema.plain_serializer_function_ser_schema(dump, info_arg=True),
        )


class _HashableSetFactory:
    """`sd.HashableSet[T]`: `Annotated[frozenset[T], HashSafeSetSerializer()]`."""

    def __getitem__(self, item: Any) -> Any:
        return Annotated[frozenset[item], HashSafeSetSerializer()]


if TYPE_CHECKING:
    HashableSet = Annotated[frozenset[T], "HashableSet"]
else:
    HashableSet = _HashableSetFactory()
