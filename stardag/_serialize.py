"""Serializers: a task's return type picks how its value becomes bytes, deterministically.

| return type                      | serializer | bytes                                      |
|----------------------------------|------------|--------------------------------------------|
| `str`                            | `text`     | UTF-8                                      |
| `bytes`                          | `bytes`    | as is                                      |
| `numpy.ndarray`                  | `numpy`    | `.npy` format, no pickle                   |
| JSON-able (Pydantic can schema)  | `json`     | Pydantic JSON, sorted keys, no whitespace  |
| anything else                    | `pickle`   | pickle protocol 5                          |

`Annotated[T, serializer]` picks one explicitly. Each serializer writes to a
binary sink and reads from a binary source, so large values stream.
"""

from __future__ import annotations

import json
import pickle
import typing
from typing import IO, Annotated, Any, Protocol, runtime_checkable

from pydantic import TypeAdapter

from stardag._errors import SerializationError

# NEVER CHANGE: the pickle protocol is part of the bytes, so of every pickled digest.
PICKLE_PROTOCOL = 5


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes on a sink and back; `name` is stored in the record."""

    name: str

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        """Write `value`'s bytes to `sink`; raise `SerializationError` if it cannot."""

    def load(self, source: IO[bytes]) -> Any:
        """Read a value back from `source`."""


class TextSerializer:
    """`str` as UTF-8."""

    name = "text"

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        if not isinstance(value, str):
            raise SerializationError(f"expected str, got {type(value).__qualname__}")
        sink.write(value.encode())

    def load(self, source: IO[bytes]) -> Any:
        return source.read().decode()


class BytesSerializer:
    """`bytes` as they are."""

    name = "bytes"

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise SerializationError(f"expected bytes, got {type(value).__qualname__}")
        sink.write(value)

    def load(self, source: IO[bytes]) -> Any:
        return source.read()


class JSONSerializer:
    """JSON through Pydantic: loads back the exact declared type (models, tuples, sets)."""

    name = "json"

    def __init__(self, tp: Any) -> None:
        self.adapter: TypeAdapter[Any] = TypeAdapter(tp)

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        try:
            data = self.adapter.dump_python(value, mode="json", warnings="error")
            sink.write(
                json.dumps(
                    data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
                ).encode()
            )
        except (ValueError, TypeError) as exc:  # pydantic's errors derive from these
            raise SerializationError(f"cannot serialize as JSON: {exc}") from exc

    def load(self, source: IO[bytes]) -> Any:
        return self.adapter.validate_json(source.read())


class PickleSerializer:
    """Pickle protocol 5: the fallback for values JSON cannot describe."""

    name = "pickle"

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        try:
            pickle.dump(value, sink, protocol=PICKLE_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise SerializationError(f"cannot pickle the value: {exc}") from exc

    def load(self, source: IO[bytes]) -> Any:
        return pickle.load(source)  # noqa: S301  # only blobs from our own store are read


class NumpySerializer:
    """`numpy.ndarray` in `.npy` format (no pickled objects)."""

    name = "numpy"

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        import numpy as np

        if not isinstance(value, np.ndarray):
            raise SerializationError(f"expected numpy.ndarray, got {type(value).__qualname__}")
        try:
            np.lib.format.write_array(sink, value, allow_pickle=False)
        except ValueError as exc:
            raise SerializationError(f"cannot write the array: {exc}") from exc

    def load(self, source: IO[bytes]) -> Any:
        import numpy as np

        return np.lib.format.read_array(source, allow_pickle=False)


def serializer_for(tp: Any) -> Serializer:
    """The serializer a return type picks (see the module table)."""
    if typing.get_origin(tp) is Annotated:
        for meta in typing.get_args(tp)[1:]:
            if isinstance(meta, Serializer):
                return meta
    if tp is str:
        return TextSerializer()
    if tp is bytes:
        return BytesSerializer()
    if _is_numpy_array(tp):
        return NumpySerializer()
    if tp is Any or tp is object:
        return PickleSerializer()
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(tp)
        adapter.json_schema()
    except Exception:  # noqa: BLE001  # any failure means "not JSON-able": use pickle
        return PickleSerializer()
    serializer = JSONSerializer.__new__(JSONSerializer)
    serializer.adapter = adapter
    return serializer


def by_name(name: str, tp: Any) -> Serializer:
    """The serializer recorded as `name`, for a task returning `tp`."""
    chosen = serializer_for(tp)
    if chosen.name == name:
        return chosen
    fallback: dict[str, type[Serializer]] = {
        "text": TextSerializer,
        "bytes": BytesSerializer,
        "pickle": PickleSerializer,
    }
    if name in fallback:
        return fallback[name]()
    if name == "numpy":
        return NumpySerializer()
    raise SerializationError(f"stored with serializer {name!r}, which {tp!r} cannot load")


def _is_numpy_array(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return (
        getattr(origin, "__module__", "") == "numpy"
        and getattr(origin, "__name__", "") == "ndarray"
    )
