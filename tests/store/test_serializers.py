"""Serializers: each type round-trips through a task, with deterministic bytes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from typing import IO, Annotated, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pydantic
import pytest

import stardag as sd
from stardag.store import _serialize


def _round_trip(value: Any, tp: Any) -> tuple[Any, str, bytes]:
    """Save `value` as a fresh task's output of type `tp`: (loaded, serializer, raw bytes)."""

    class Holder(sd.Task[tp]):  # type: ignore[valid-type]  # the type is the parameter
        key: str

        def run(self) -> Any:
            return value

    task = Holder(key=repr(tp))
    sd.build(task)
    record = task.output().record()
    assert record is not None
    return task.load(), record.serializer, task.output().store.read_output(record)


def _dump(serializer: _serialize.Serializer, value: Any) -> bytes:
    sink = io.BytesIO()
    serializer.dump(value, sink)
    return sink.getvalue()


class Point(pydantic.BaseModel):
    """A JSON-able model."""

    x: int
    y: tuple[float, float]


class Opaque:
    """A class that Pydantic cannot describe in JSON."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.n == self.n


@pytest.mark.parametrize(
    ("value", "tp", "name"),
    [
        ("héllo\nworld", str, "text"),
        (b"\x00\xffraw", bytes, "bytes"),
        ({"b": [1, 2], "a": None}, dict[str, Any], "json"),
        (Point(x=1, y=(0.5, 2.0)), Point, "json"),
        ({1, 2, 3}, set[int], "json"),
        (Opaque(7), Opaque, "pickle"),
    ],
)
def test_core_serializers_round_trip(value: Any, tp: Any, name: str) -> None:
    """Text, bytes, JSON and pickle outputs load back equal, under their serializer's name."""
    loaded, serializer, _ = _round_trip(value, tp)
    assert loaded == value and type(loaded) is type(value)
    assert serializer == name


def test_json_bytes_are_canonical() -> None:
    """JSON outputs are sorted and compact, whatever the insertion order."""
    serializer = _serialize.serializer_for(dict[str, int])
    assert (
        _dump(serializer, {"b": 1, "a": 2})
        == _dump(serializer, {"a": 2, "b": 1})
        == (b'{"a":2,"b":1}')
    )


@pytest.mark.parametrize("value", [0, -7, 2**63, 10**40, True, np.int64(5)])
def test_int_outputs_store_the_bytes_pydantic_gives(value: Any) -> None:
    """An int output (the common case, written without pydantic's round trip) is stored
    as the same bytes as through pydantic; a bool or numpy int still goes through it."""
    adapter = pydantic.TypeAdapter(int)
    expected = str(adapter.dump_python(adapter.validate_python(value), mode="json")).encode()
    assert _dump(_serialize.serializer_for(int), value) == expected


@pytest.mark.parametrize("value", [False, True])
def test_bool_outputs_store_the_bytes_pydantic_gives(value: bool) -> None:
    """A bool output, written without pydantic's round trip, has its bytes."""
    adapter = pydantic.TypeAdapter(bool)
    data = adapter.dump_python(adapter.validate_python(value), mode="json")
    expected = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    assert _dump(_serialize.serializer_for(bool), value) == expected


def test_an_int_past_the_digit_limit_is_a_serialization_error() -> None:
    """An int too long to write as text fails as JSON would, naming the limit."""
    with pytest.raises(sd.SerializationError, match="limit"):
        _dump(_serialize.serializer_for(int), 10**5000)


ARRAYS = {
    "float64": np.random.default_rng(0).standard_normal(1000),
    "int matrix": np.arange(60, dtype=np.int32).reshape(6, 10),
    "fortran": np.asfortranarray(np.arange(60, dtype=np.float32).reshape(6, 10)),
    "strided": np.arange(100, dtype=np.int64)[::3],
    "scalar": np.array(3.5),
    "empty": np.zeros((0, 4)),
    "structured": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", ">f8")]),
    "datetime": np.array(["2024-01-01", "2025-06-30"], dtype="datetime64[D]"),
    "bool": np.array([True, False, True]),
    "unicode": np.array(["\u03b1", "\u03b2\u03b3"]),
    "large": np.arange(3 << 20, dtype=np.int64),  # 24 MiB: streamed both ways
}


@pytest.mark.parametrize("name", list(ARRAYS))
def test_numpy_round_trips_as_npy(name: str) -> None:
    """An array loads back equal (dtype, shape, order) and is stored as `np.save` writes it."""
    array = ARRAYS[name]
    loaded, serializer, raw = _round_trip(array, np.ndarray)
    assert serializer == "numpy"
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)
    fortran_only = array.flags.f_contiguous and not array.flags.c_contiguous
    assert loaded.flags["F_CONTIGUOUS" if fortran_only else "C_CONTIGUOUS"]
    expected = io.BytesIO()
    np.save(expected, array, allow_pickle=False)
    assert raw == expected.getvalue()


def test_numpy_header_too_long_for_format_1_uses_format_2() -> None:
    """A dtype whose header passes 64 KiB is stored in `.npy` format 2.0, like `np.save`."""
    array = np.zeros(2, dtype=[(f"field_{i:05d}", "<f4") for i in range(4000)])
    loaded, _, raw = _round_trip(array, np.ndarray)
    expected = io.BytesIO()
    with pytest.warns(UserWarning, match="format 2.0"):
        np.save(expected, array)
    assert raw == expected.getvalue() and raw[6] == 2
    np.testing.assert_array_equal(loaded, array)


def test_numpy_object_arrays_are_refused() -> None:
    """An array of Python objects is a SerializationError, not a pickle."""
    with pytest.raises(sd.SerializationError, match="objects"):
        _round_trip(np.array([{"a": 1}], dtype=object), np.ndarray)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": np.arange(5, dtype=np.int64),
            "f": np.linspace(0, 1, 5),
            "s": ["a", "b", None, "d", "e"],
            "t": pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC"),
            "c": pd.Categorical(["x", "y", "x", "y", "x"]),
        },
        index=pd.Index([10, 20, 30, 40, 50], name="key"),
    )


def test_pandas_dataframe_round_trips_as_parquet() -> None:
    """A DataFrame loads back equal, index and dtypes included."""
    loaded, serializer, raw = _round_trip(_frame(), pd.DataFrame)
    assert serializer == "pandas-parquet" and raw[:4] == b"PAR1"
    pd.testing.assert_frame_equal(loaded, _frame())


def test_pandas_parquet_bytes_are_deterministic() -> None:
    """Equal DataFrames give equal bytes (so equal digests)."""
    serializer = _serialize.serializer_for(pd.DataFrame)
    assert _dump(serializer, _frame()) == _dump(serializer, _frame().copy())


def test_arrow_table_round_trips_as_parquet() -> None:
    """A pyarrow Table loads back equal, with deterministic bytes."""
    table = pa.table({"a": [1, 2, 3], "b": ["x", None, "z"], "c": [[1], [], [2, 3]]})
    loaded, serializer, raw = _round_trip(table, pa.Table)
    assert serializer == "parquet" and loaded.equals(table)
    assert raw == _dump(_serialize.serializer_for(pa.Table), pa.table(table.to_pydict()))


def test_wrong_value_for_the_type_is_a_serialization_error() -> None:
    """Returning a list where a DataFrame is declared fails the task clearly."""
    with pytest.raises(sd.StardagError, match=r"expected pandas\.DataFrame, got list"):
        _round_trip([1, 2], pd.DataFrame)


class CSVInts:
    """An explicit serializer."""

    name = "csv-ints"

    def dump(self, value: list[int], sink: IO[bytes]) -> None:
        sink.write(",".join(map(str, value)).encode())

    def load(self, source: IO[bytes]) -> list[int]:
        return [int(x) for x in source.read().decode().split(",")]


def test_annotated_serializer_wins() -> None:
    """`Annotated[T, serializer]` picks that serializer."""
    loaded, serializer, raw = _round_trip([1, 2, 3], Annotated[list[int], CSVInts()])
    assert (loaded, serializer, raw) == ([1, 2, 3], "csv-ints", b"1,2,3")


def _without(package: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter where importing `package` fails."""
    prelude = f"import sys\nsys.modules[{package!r}] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dataframe_without_pyarrow_is_a_clear_error() -> None:
    """A task returning a DataFrame, where pyarrow is missing, says what to install."""
    done = _without(
        "pyarrow",
        """
        import pandas as pd
        import stardag as sd
        try:
            @sd.task
            def frame() -> pd.DataFrame:
                return pd.DataFrame()
        except sd.OptionalDependencyError as exc:
            print(exc.package, "|", exc)
        """,
    )
    assert done.returncode == 0, done.stderr
    package, message = done.stdout.strip().split(" | ")
    assert package == "pyarrow" and "pip install 'stardag[pandas]'" in message


def test_loading_an_array_without_numpy_is_a_clear_error() -> None:
    """A numpy output read where numpy is missing says what to install."""
    done = _without(
        "numpy",
        """
        import io
        import stardag as sd
        from stardag.store import _serialize
        try:
            _serialize.by_name("numpy", object).load(io.BytesIO(b""))
        except sd.OptionalDependencyError as exc:
            print(exc.package, "|", exc)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("numpy | ") and "stardag[numpy]" in done.stdout
