"""Serializers by the released stardag's names, for `Annotated[T, Serializer()]`.

The invariant: each class here writes through one of our own serializers (or the
`TargetSerializer` adapter), so a value still lands in the content-addressed store
as a verified blob; the names, constructors and the `dumps`/`loads` methods are the
released stardag's. A custom serializer written against its protocol (`dump(value,
target)` and `load(target)` on a file target, optionally subclassing
`DumpsLoadsSerializer`) works unchanged in `Annotated[T, MySerializer()]`.

| released name                      | stored as        |
|------------------------------------|------------------|
| `PlainTextSerializer()`            | `text`           |
| `JSONSerializer(annotation)`       | `json`           |
| `PickleSerializer()`               | `pickle`         |
| `PandasDataFrameCSVSerializer()`   | `pandas-csv`     |
| `PandasDataFrameParquetSerializer()` | `pandas-parquet` |
| `NumpySerializer()`                | `numpy`          |
| `SelfFileSerializer(cls)`          | `cls.dump(target)` / `cls.load(target)` |
"""

from __future__ import annotations

import abc
import typing
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from stardag.store import _serialize

T = TypeVar("T")
StreamT = TypeVar("StreamT", str, bytes)


@runtime_checkable
class Serializer(Protocol):
    """The released stardag's serializer protocol: a value to and from a file target."""

    def dump(self, obj: Any, target: Any) -> None:
        """Write `obj` to `target`."""

    def load(self, target: Any) -> Any:
        """Read a value from `target`."""


FileSerializer = Serializer


@runtime_checkable
class SelfFileSerializing(Protocol):
    """A class that writes itself to a file target and reads itself back."""

    def dump(self, target: Any) -> None:
        """Write this object to `target`."""

    @classmethod
    def load(cls, target: Any) -> Any:
        """Read an object from `target`."""


class DumpsLoadsSerializer(Generic[T, StreamT], abc.ABC):
    """A serializer from `dumps(obj)` and `loads(data)`; `stream_type` is `str` or `bytes`.

    `dump`/`load` (and their async forms) open the target in text or binary mode to
    match. Subclass it, as in the released stardag, and use an instance in
    `Annotated[T, MySerializer()]`.
    """

    stream_type: ClassVar[type]

    @abc.abstractmethod
    def dumps(self, obj: T) -> StreamT:
        """`obj` as text or bytes."""

    @abc.abstractmethod
    def loads(self, data: StreamT) -> T:
        """The value `data` holds."""

    @property
    def read_mode(self) -> str:
        """`"r"` for text, `"rb"` for bytes."""
        return "r" if self.stream_type is str else "rb"

    @property
    def write_mode(self) -> str:
        """`"w"` for text, `"wb"` for bytes."""
        return "w" if self.stream_type is str else "wb"

    def dump(self, obj: T, target: Any) -> None:
        """Write `dumps(obj)` to the target."""
        with target.open(self.write_mode) as handle:
            handle.write(self.dumps(obj))

    def load(self, target: Any) -> T:
        """`loads()` of the target's content."""
        with target.open(self.read_mode) as handle:
            return self.loads(handle.read())

    async def dump_aio(self, obj: T, target: Any) -> None:
        """Async `dump()`."""
        async with target.open_aio(self.write_mode) as handle:
            await handle.write(self.dumps(obj))

    async def load_aio(self, target: Any) -> T:
        """Async `load()`."""
        async with target.open_aio(self.read_mode) as handle:
            return self.loads(await handle.read())


_DumpsLoadsSerializer = DumpsLoadsSerializer  # the released stardag's (private) spelling


def _is_target(candidate: Any) -> bool:
    return callable(getattr(candidate, "open", None)) and not hasattr(candidate, "write")


def strip_annotation(annotation: Any) -> Any:
    """`T` from `Annotated[T, ...]`; anything else as it is."""
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.get_args(annotation)[0]
    return annotation


class _Named:
    """The released stardag's extras on our serializers: equality by class, an extension."""

    extension: ClassVar[str | None] = None

    def dump(self, value: Any, sink: Any) -> None:
        """Write `value` to a binary stream, or (as the released stardag) to a file target."""
        if _is_target(sink):
            with sink.open("wb") as handle:
                super().dump(value, handle)  # type: ignore[misc]  # the serializer after us
            return
        super().dump(value, sink)  # type: ignore[misc]

    def load(self, source: Any) -> Any:
        """Read a value from a binary stream, or (as the released stardag) a file target."""
        if _is_target(source):
            with source.open("rb") as handle:
                return super().load(handle)  # type: ignore[misc]
        return super().load(source)  # type: ignore[misc]

    def get_default_extension(self) -> str | None:
        """The file extension the released stardag gave this format (informational)."""
        return self.extension

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class PlainTextSerializer(_Named, _serialize.TextSerializer):
    """`str` as UTF-8 text."""

    extension = "txt"

    @classmethod
    def type_checked_init(cls, annotation: Any) -> PlainTextSerializer:
        """An instance, if `annotation` is `str`."""
        if strip_annotation(annotation) is not str:
            raise ValueError(f"{annotation} must be str")
        return cls()

    def dumps(self, obj: str) -> str:
        """The text itself."""
        return obj

    def loads(self, data: str) -> str:
        """The text itself."""
        return data


class JSONSerializer(_Named, _serialize.JSONSerializer):
    """JSON through a Pydantic `TypeAdapter` of `annotation` (canonical: sorted keys)."""

    extension = "json"

    def __init__(self, annotation: Any) -> None:
        super().__init__(strip_annotation(annotation))
        self.type_adapter = self.adapter

    @classmethod
    def type_checked_init(cls, annotation: Any) -> JSONSerializer:
        """An instance for `annotation`."""
        return cls(annotation)

    def dumps(self, obj: Any) -> bytes:
        """`obj` as the JSON bytes stored."""
        import io

        sink = io.BytesIO()
        self.dump(obj, sink)
        return sink.getvalue()

    def loads(self, data: bytes) -> Any:
        """The value JSON `data` holds."""
        return self.adapter.validate_json(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JSONSerializer) and repr(other.adapter.core_schema) == repr(
            self.adapter.core_schema
        )

    def __hash__(self) -> int:
        return hash((type(self), repr(self.adapter.core_schema)))


class PickleSerializer(_Named, _serialize.PickleSerializer):
    """Any picklable value (protocol 5, fixed: it is part of the digest)."""

    extension = "pkl"

    @classmethod
    def type_checked_init(cls, annotation: Any) -> PickleSerializer:
        """An instance (any type)."""
        return cls()

    def dumps(self, obj: Any) -> bytes:
        """`obj` pickled."""
        import pickle

        return pickle.dumps(obj, protocol=_serialize.PICKLE_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        """The unpickled value."""
        import pickle

        return pickle.loads(data)  # noqa: S301  # only blobs from our own store are read


class PandasDataFrameCSVSerializer(_Named, _serialize.PandasCSVSerializer):
    """`pandas.DataFrame` as CSV with its index."""

    extension = "csv"

    def dumps(self, obj: Any) -> str:
        """The CSV text."""
        return str(obj.to_csv(index=True, lineterminator="\n"))

    def loads(self, data: str) -> Any:
        """The DataFrame the CSV text holds."""
        import io

        pd = _serialize.optional_import("pandas", "pandas", "a pandas.DataFrame")
        return pd.read_csv(io.StringIO(data), index_col=0)


class PandasDataFrameParquetSerializer(_Named, _serialize.PandasSerializer):
    """`pandas.DataFrame` as Parquet (pinned settings), our default for DataFrames."""

    extension = "parquet"


class NumpySerializer(_Named, _serialize.NumpySerializer):
    """`numpy.ndarray` in `.npy` format, our default for arrays."""

    extension = "npy"


class SelfFileSerializer:
    """A class that writes and reads itself: `obj.dump(target)` and `cls.load(target)`."""

    def __init__(self, class_: Any) -> None:
        self.class_ = class_

    @classmethod
    def type_checked_init(cls, annotation: Any) -> SelfFileSerializer:
        """An instance, if `annotation` is a class with `dump` and `load`."""
        stripped = strip_annotation(annotation)
        if not (
            isinstance(stripped, type)
            and callable(getattr(stripped, "dump", None))
            and callable(getattr(stripped, "load", None))
        ):
            raise ValueError(f"{annotation} must be a class with dump(target) and load(target)")
        return cls(stripped)

    def dump(self, obj: Any, target: Any) -> None:
        """`obj.dump(target)`."""
        obj.dump(target)

    def load(self, target: Any) -> Any:
        """`class_.load(target)`."""
        return self.class_.load(target)

    def get_default_extension(self) -> None:
        """No extension."""
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SelfFileSerializer) and other.class_ is self.class_

    def __hash__(self) -> int:
        return hash((type(self), self.class_))


def get_serializer(annotation: Any) -> Any:
    """The serializer a task returning `annotation` uses (our choice, as the store makes it)."""
    return _serialize.serializer_for(annotation)


__all__ = [
    "DumpsLoadsSerializer",
    "FileSerializer",
    "JSONSerializer",
    "NumpySerializer",
    "PandasDataFrameCSVSerializer",
    "PandasDataFrameParquetSerializer",
    "PickleSerializer",
    "PlainTextSerializer",
    "SelfFileSerializer",
    "SelfFileSerializing",
    "Serializer",
    "get_serializer",
    "strip_annotation",
]
