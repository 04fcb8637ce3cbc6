"""Serializers: a task's return type picks how its value becomes bytes, deterministically.

| return type                      | serializer       | bytes                                     |
|----------------------------------|------------------|-------------------------------------------|
| `str`                            | `text`           | UTF-8                                     |
| `bytes`                          | `bytes`          | as is                                     |
| `numpy.ndarray`                  | `numpy`          | `.npy` format, no pickle                  |
| `pandas.DataFrame`               | `pandas-parquet` | Parquet (pinned settings, no compression) |
| `pyarrow.Table`                  | `parquet`        | Parquet (pinned settings, no compression) |
| `sd.Directory`                   | `directory`      | a manifest; each file is its own blob     |
| JSON-able (Pydantic can schema)  | `json`           | Pydantic JSON, sorted keys, no whitespace |
| anything else                    | `pickle`         | pickle protocol 5                         |

`Annotated[T, serializer]` picks one explicitly; a serializer written against the
released stardag's protocol (`dump(value, target)`/`load(target)`) works there too,
through `TargetSerializer`, and its bytes are stored like any other. Each serializer writes to a
binary sink and reads from a binary source, chunk by chunk where the format
allows (`.npy` streams both ways; Parquet keeps its index at the end, so it is
read whole). Parquet is written uncompressed: the store compresses (or not) the
whole blob. numpy, pandas and pyarrow are optional: a type from a package that is
not installed is an `OptionalDependencyError` naming the extra to install.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import pickle
import shutil
import tempfile
import typing
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import IO, Annotated, Any, Protocol, runtime_checkable

from pydantic import TypeAdapter, ValidationError

from stardag._errors import OptionalDependencyError, SerializationError

# NEVER CHANGE: the pickle protocol is part of the bytes, so of every pickled digest.
PICKLE_PROTOCOL = 5
# Text is encoded this many characters at a time.
TEXT_STEP = 1 << 20
# Arrays are written and read in slices of this size (no copy of the whole array).
ARRAY_STEP = 4 << 20
# `.npy` headers up to this size are parsed (numpy's default, 10 kB, refuses wide dtypes).
NPY_MAX_HEADER = 1 << 20
# NEVER CHANGE without a reason: these settings are part of every Parquet digest.
PARQUET_SETTINGS: dict[str, Any] = {
    "version": "2.6",
    "compression": "none",
    "use_dictionary": True,
    "write_statistics": True,
    "data_page_size": 1 << 20,
    "data_page_version": "1.0",
    "row_group_size": 1 << 20,
    "store_schema": True,
    "write_page_index": False,
    "write_page_checksum": False,
    "use_compliant_nested_type": True,
}


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes on a sink and back; `name` is stored in the record."""

    name: str

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        """Write `value`'s bytes to `sink`; raise `SerializationError` if it cannot."""

    def load(self, source: IO[bytes]) -> Any:
        """Read a value back from `source`."""


def optional_import(module: str, extra: str, what: str) -> ModuleType:
    """Import an optional package, or raise `OptionalDependencyError` saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise OptionalDependencyError(
            f"{what} needs {package}, which is not installed: pip install 'stardag[{extra}]'",
            package=package,
        ) from None


class TextSerializer:
    """`str` as UTF-8."""

    name = "text"

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        if not isinstance(value, str):
            raise SerializationError(f"expected str, got {type(value).__qualname__}")
        for start in range(0, max(len(value), 1), TEXT_STEP):  # no second whole copy
            try:
                piece = value[start : start + TEXT_STEP].encode()
            except UnicodeEncodeError as exc:
                where = start + exc.start
                raise SerializationError(
                    f"the text holds a lone surrogate (U+{ord(value[where]):04X}) at index "
                    f"{where}, which UTF-8 cannot encode"
                ) from None
            sink.write(piece)

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


# One encoder for every JSON output (json.dumps with these options builds one per call).
_CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


# Declared types whose exact instances pydantic validates and dumps unchanged: they are
# encoded directly, the same bytes (not float: pydantic writes inf and nan as null).
_PLAIN = (int, bool)  # (a str output is stored as text, not JSON)


class JSONSerializer:
    """JSON through Pydantic: loads back the exact declared type (models, tuples, sets)."""

    name = "json"

    def __init__(self, tp: Any, adapter: TypeAdapter[Any] | None = None) -> None:
        self.adapter: TypeAdapter[Any] = TypeAdapter(tp) if adapter is None else adapter
        self.type_name = _type_name(tp)
        self.plain = tp if tp in _PLAIN else None

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        sink.write(self.dump_bytes(value))

    def dump_bytes(self, value: Any) -> bytes:
        """The value's JSON bytes (an output's bytes are in memory anyway: one write)."""
        plain = type(value) is self.plain  # pydantic's round trip would give it back as is
        if not plain:
            value = self._validated(value)
        try:
            if plain and self.plain is int:
                return str(value).encode()  # its canonical JSON, and the same digit limit
            if not plain:
                value = self.adapter.dump_python(value, mode="json", warnings="error")
            return _CANONICAL_JSON.encode(value).encode()
        except (ValueError, TypeError) as exc:  # pydantic's errors derive from these
            raise SerializationError(f"cannot serialize as JSON: {exc}") from exc

    def _validated(self, value: Any) -> Any:
        try:
            return self.adapter.validate_python(value)  # numpy scalars pass, None for int not
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            raise SerializationError(
                f"it does not validate as {self.type_name} ({problems})"
            ) from exc

    def load(self, source: IO[bytes]) -> Any:
        return self.adapter.validate_json(source.read())


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp)


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
    """`numpy.ndarray` in `.npy` format (no pickled objects), streamed without a copy.

    The bytes are exactly what `np.save` writes, so `np.load` reads a loaded blob.
    """

    name = "numpy"

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        np = optional_import("numpy", "numpy", "a numpy.ndarray output")
        if not isinstance(value, np.ndarray):
            raise SerializationError(f"expected numpy.ndarray, got {type(value).__qualname__}")
        if value.dtype.hasobject:
            raise SerializationError("arrays of Python objects are not stored (no pickle)")
        header = _npy_header(np, value)
        if header is None:  # a rare layout: numpy's own writer (it copies in slices)
            np.lib.format.write_array(sink, value, allow_pickle=False)
            return
        sink.write(header)
        for piece in _npy_data_slices(np, value):
            sink.write(piece)

    def load(self, source: IO[bytes]) -> Any:
        np = optional_import("numpy", "numpy", "loading a numpy.ndarray output")
        fmt = np.lib.format
        magic = _read_exact(source, fmt.MAGIC_LEN)
        version = (magic[-2], magic[-1])
        if version not in ((1, 0), (2, 0)):
            return fmt.read_array(
                _Prefixed(magic, source), allow_pickle=False, max_header_size=NPY_MAX_HEADER
            )
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran_order, dtype = read_header(source, max_header_size=NPY_MAX_HEADER)
        if dtype.hasobject:
            raise SerializationError("the stored array holds Python objects (pickle): refused")
        array = np.empty(shape, dtype=dtype, order="F" if fortran_order else "C")
        if array.nbytes:
            flat = (array.T if fortran_order else array).reshape(-1).view(np.uint8)
            _readinto_exact(source, memoryview(flat))
        return array


def _npy_header(np: Any, array: Any) -> bytes | None:
    fmt = np.lib.format
    data = fmt.header_data_from_array_1_0(array)
    if array.itemsize == 0 or not (array.flags.c_contiguous or array.flags.f_contiguous):
        return None
    for write_header in (fmt.write_array_header_1_0, fmt.write_array_header_2_0):
        buffer = io.BytesIO()
        try:
            write_header(buffer, data)
        except ValueError:  # too long, or a field name that needs format 3.0
            continue
        return buffer.getvalue()
    return None


def _npy_data_slices(np: Any, array: Any) -> typing.Iterator[memoryview]:
    fortran = array.flags.f_contiguous and not array.flags.c_contiguous
    flat = (array.T if fortran else array).reshape(-1).view(np.uint8)
    for start in range(0, flat.size, ARRAY_STEP):
        yield memoryview(flat[start : start + ARRAY_STEP])


def _read_exact(source: IO[bytes], size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise SerializationError(f"stored bytes end early: expected {size}, got {len(data)}")
    return data


def _readinto_exact(source: IO[bytes], view: memoryview) -> None:
    filled = 0
    while filled < len(view):
        got = source.readinto(view[filled:])  # type: ignore[attr-defined]  # binary sources have readinto
        if not got:
            raise SerializationError(f"stored array data ends early: {filled} of {len(view)} bytes")
        filled += got


class _Prefixed(io.RawIOBase):
    """A stream that yields some bytes already read, then the rest of `source`."""

    def __init__(self, prefix: bytes, source: IO[bytes]) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            size = min(len(buffer), len(self._prefix))
            buffer[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return size
        return self._source.readinto(buffer)  # type: ignore[attr-defined, no-any-return]  # binary sources have readinto


class ArrowSerializer:
    """`pyarrow.Table` as Parquet, with every writer setting pinned (`PARQUET_SETTINGS`)."""

    name = "parquet"

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        pa = optional_import("pyarrow", "arrow", "a pyarrow.Table output")
        if not isinstance(value, pa.Table):
            raise SerializationError(f"expected pyarrow.Table, got {type(value).__qualname__}")
        _write_parquet(value, sink)

    def load(self, source: IO[bytes]) -> Any:
        return _read_parquet(source)


class PandasSerializer:
    """`pandas.DataFrame` as Parquet through pyarrow (index and dtypes kept)."""

    name = "pandas-parquet"

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        pd = optional_import("pandas", "pandas", "a pandas.DataFrame output")
        pa = optional_import("pyarrow", "pandas", "a pandas.DataFrame output")
        if not isinstance(value, pd.DataFrame):
            raise SerializationError(f"expected pandas.DataFrame, got {type(value).__qualname__}")
        try:
            table = pa.Table.from_pandas(value, nthreads=1)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise SerializationError(f"cannot convert the DataFrame to Arrow: {exc}") from exc
        _write_parquet(table, sink)

    def load(self, source: IO[bytes]) -> Any:
        optional_import("pandas", "pandas", "loading a pandas.DataFrame output")
        return _read_parquet(source).to_pandas()


class PandasCSVSerializer:
    """`pandas.DataFrame` as CSV with its index (the released stardag's CSV format)."""

    name = "pandas-csv"

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        pd = optional_import("pandas", "pandas", "a pandas.DataFrame output")
        if not isinstance(value, pd.DataFrame):
            raise SerializationError(f"expected pandas.DataFrame, got {type(value).__qualname__}")
        sink.write(value.to_csv(index=True, lineterminator="\n").encode())

    def load(self, source: IO[bytes]) -> Any:
        pd = optional_import("pandas", "pandas", "loading a pandas.DataFrame output")
        return pd.read_csv(io.BytesIO(source.read()), index_col=0)


class TargetSerializer:
    """A serializer written against the released stardag's protocol, in our store.

    Such a serializer has `dump(value, target)` and `load(target)` on a file target
    (and no `name`). This adapter hands it a stand-in target whose `open()`,
    `open_aio()` and `proxy_path()` lead to the blob being written or read, so its
    bytes land content-addressed like any other. The record names it by its class.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        cls = type(inner)
        self.name = f"target:{cls.__module__}.{cls.__qualname__}"

    def dump(self, value: Any, sink: IO[bytes]) -> None:
        self.inner.dump(value, _BlobTarget(sink, writing=True))

    def load(self, source: IO[bytes]) -> Any:
        return self.inner.load(_BlobTarget(source, writing=False))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TargetSerializer) and other.inner == self.inner

    def __hash__(self) -> int:
        return hash(self.name)


def is_target_serializer(candidate: Any) -> bool:
    """Whether `candidate` looks like a serializer of the released stardag's protocol."""
    if isinstance(candidate, (type, Serializer)):
        return False
    return callable(getattr(candidate, "dump", None)) and callable(getattr(candidate, "load", None))


class _Unclosed(io.RawIOBase):
    """The blob's stream as a file a target serializer may close without closing the blob."""

    def __init__(self, inner: IO[bytes], writing: bool) -> None:
        super().__init__()
        self._inner = inner
        self._writing = writing

    def readable(self) -> bool:
        return not self._writing

    def writable(self) -> bool:
        return self._writing

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def write(self, data: Any, /) -> int:
        self._inner.write(data)
        return len(data)


class _BlobTarget:
    """The stand-in file target a `TargetSerializer` hands its serializer."""

    uri = "stardag://blob"

    def __init__(self, stream: IO[bytes], *, writing: bool) -> None:
        self._stream = stream
        self._writing = writing

    def exists(self) -> bool:
        return not self._writing

    @contextlib.contextmanager
    def open(self, mode: str = "r") -> Iterator[IO[Any]]:
        if mode not in ("r", "rb", "w", "wb") or mode.startswith("w") != self._writing:
            doing = "written" if self._writing else "read"
            raise SerializationError(
                f"the blob is being {doing}: cannot open it with mode {mode!r}"
            )
        raw = io.BufferedWriter(_Unclosed(self._stream, True)) if self._writing else None
        if raw is None:
            reader = io.BufferedReader(_Unclosed(self._stream, False))
            yield io.TextIOWrapper(reader, encoding="utf-8") if mode == "r" else reader
            return
        handle: IO[Any] = io.TextIOWrapper(raw, encoding="utf-8") if mode == "w" else raw
        yield handle
        handle.flush()

    @contextlib.asynccontextmanager
    async def open_aio(self, mode: str = "r") -> AsyncIterator[Any]:
        with self.open(mode) as handle:
            yield _AsyncFile(handle)

    @contextlib.contextmanager
    def proxy_path(self, mode: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="stardag-serialize-") as scratch:
            local = Path(scratch) / "blob"
            if mode == "r":
                with self.open("rb") as source, open(local, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                yield local
                return
            yield local
            with open(local, "rb") as source, self.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)

    @contextlib.asynccontextmanager
    async def proxy_path_aio(self, mode: str) -> AsyncIterator[Path]:
        with self.proxy_path(mode) as path:
            yield path


class _AsyncFile:
    def __init__(self, handle: IO[Any]) -> None:
        self._handle = handle

    async def read(self, size: int = -1) -> Any:
        return self._handle.read(size)

    async def write(self, data: Any) -> int:
        return int(self._handle.write(data))


def _write_parquet(table: Any, sink: IO[bytes]) -> None:
    pq = optional_import("pyarrow.parquet", "arrow", "a Parquet output")
    try:
        pq.write_table(table, sink, **PARQUET_SETTINGS)
    except (OSError, TypeError, ValueError) as exc:  # pyarrow's errors derive from these
        raise SerializationError(f"cannot write the table as Parquet: {exc}") from exc


def _read_parquet(source: IO[bytes]) -> Any:
    pa = optional_import("pyarrow", "arrow", "loading a Parquet output")
    pq = optional_import("pyarrow.parquet", "arrow", "loading a Parquet output")
    data = source.read()  # Parquet's index is at its end: the bytes are needed whole
    return pq.read_table(pa.BufferReader(data))


def serializer_for(tp: Any) -> Serializer:
    """The serializer a return type picks (see the module table)."""
    if typing.get_origin(tp) is Annotated:
        for meta in typing.get_args(tp)[1:]:
            if isinstance(meta, Serializer):
                return meta
            if is_target_serializer(meta):
                return TargetSerializer(meta)
        tp = typing.get_args(tp)[0]
    by_type = _serializer_by_type(tp)
    if by_type is not None:
        return by_type
    if tp is Any or tp is object:
        return PickleSerializer()
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(tp)
        adapter.json_schema()
    except Exception:  # noqa: BLE001  # any failure means "not JSON-able": use pickle
        return PickleSerializer()
    return JSONSerializer(tp, adapter)


def _serializer_by_type(tp: Any) -> Serializer | None:
    if tp is str:
        return TextSerializer()
    if tp is bytes:
        return BytesSerializer()
    origin = typing.get_origin(tp) or tp
    module = str(getattr(origin, "__module__", ""))
    name = getattr(origin, "__name__", "")
    if module.startswith("numpy") and name == "ndarray":
        return NumpySerializer()
    if module.startswith("pandas") and name == "DataFrame":
        optional_import("pyarrow", "pandas", "a pandas.DataFrame output (stored as Parquet)")
        return PandasSerializer()
    if module.startswith("pyarrow") and name == "Table":
        return ArrowSerializer()
    if module == "stardag.store._directory" and name == "Directory":
        from stardag.store._directory import DirectorySerializer

        return DirectorySerializer()
    return None


def by_name(name: str, tp: Any) -> Serializer:
    """The serializer recorded as `name`, for a task returning `tp`."""
    chosen = serializer_for(tp)
    if chosen.name == name:
        return chosen
    builtin: dict[str, type[Serializer]] = {
        s.name: s
        for s in (
            TextSerializer,
            BytesSerializer,
            PickleSerializer,
            NumpySerializer,
            ArrowSerializer,
            PandasSerializer,
            PandasCSVSerializer,
        )
    }
    if name in builtin:
        return builtin[name]()
    raise SerializationError(f"stored with serializer {name!r}, which {tp!r} cannot load")


def for_store(serializer: Serializer, store: Any) -> Serializer:
    """`serializer` bound to the store it writes to and reads from, if it needs one.

    A serializer that keeps parts of a value as blobs of their own (a directory's
    files) has a `bind(store)` method returning the bound serializer.
    """
    bind = getattr(serializer, "bind", None)
    return typing.cast(Serializer, bind(store)) if callable(bind) else serializer
