"""A capped look at an output's bytes, chosen by its serializer, that never runs its code.

The dashboard shows the start of a text, JSON re-indented, the shape and dtype of an
array (from the `.npy` header alone), the first rows of a Parquet table, a hex dump
of other bytes, and for a pickle only its size: unpickling runs arbitrary code, and
a dashboard must not. Invariants: at most `HEAD_BYTES` are read of an output larger
than `FULL_BYTES` (such a preview says it is unverified: its digest covers bytes
never read), a whole read is verified against the digest as every store read is,
and every preview's text is capped at `MAX_CHARS`. Outputs are read only through
the `Store`, which accepts nothing but 64-hex digests, so no name reaches a path.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
from dataclasses import dataclass, field
from typing import Any

from stardag._errors import StardagError
from stardag.store._record import ActionRecord
from stardag.store._store import Store

FULL_BYTES = 1 << 20  # outputs up to this size are read whole and verified
TABLE_BYTES = 32 << 20  # Parquet keeps its index at the end: read whole up to this size
HEAD_BYTES = 64 << 10  # of larger text-like outputs, only this much is read
MAX_CHARS = 4000
TABLE_ROWS = 20
HEX_BYTES = 256
_NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class Preview:
    """What the dashboard shows of an output.

    `kind` says how to show it: text (also JSON), table (`columns` and `rows`),
    array (`shape`, `dtype`), bytes (a hex dump in `text`), or none (only `note`).
    """

    kind: str
    serializer: str
    size_raw: int
    text: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int | None = None
    shape: list[int] | None = None
    dtype: str | None = None
    truncated: bool = False
    verified: bool = True
    note: str | None = None


def preview_record(store: Store, record: ActionRecord) -> Preview:
    """A preview of a task's output as its action record describes it."""
    serializer, size = record.serializer, record.size_raw
    if serializer == "pickle":
        return _pickle(size)
    try:
        if serializer in ("parquet", "pandas-parquet"):
            if size > TABLE_BYTES:
                return _none(serializer, size, f"a table of {size} bytes: too large to preview")
            return _table(store.read_output(record), serializer, size)
        whole = size <= FULL_BYTES or record.inline is not None
        data = store.read_output(record) if whole else _head(store, record)
    except StardagError as exc:
        return _none(serializer, size, f"unreadable: {exc}")
    return _from_bytes(data, serializer, size, verified=whole)


def preview_blob(store: Store, digest: str, serializer: str, size: int) -> Preview:
    """A preview of a stored blob, read as `serializer` says (from a producer's output row)."""
    if serializer == "pickle":
        return _pickle(size)
    try:
        if serializer in ("parquet", "pandas-parquet"):
            if size > TABLE_BYTES:
                return _none(serializer, size, f"a table of {size} bytes: too large to preview")
            return _table(store.read_blob(digest), serializer, size)
        whole = size <= FULL_BYTES
        data = store.read_blob(digest) if whole else _read_head(store, digest)
    except StardagError as exc:
        return _none(serializer, size, f"unreadable: {exc}")
    return _from_bytes(data, serializer, size, verified=whole)


def _head(store: Store, record: ActionRecord) -> bytes:
    return _read_head(store, record.digest, record.task_id)


def _read_head(store: Store, digest: str, task_id: str | None = None) -> bytes:
    with store.open_blob(digest, task_id) as reader:
        return reader.read(HEAD_BYTES)


def _from_bytes(data: bytes, serializer: str, size: int, *, verified: bool) -> Preview:
    cut = len(data) < size
    if serializer == "numpy":
        return _array(data, size, verified)
    if serializer in ("json", "directory"):
        return _json(data, serializer, size, cut, verified)
    if serializer == "text":
        return _text(data.decode("utf-8", errors="replace"), serializer, size, cut, verified)
    return _hex(data, serializer, size, verified)


def _text(text: str, serializer: str, size: int, cut: bool, verified: bool) -> Preview:
    shown = text[:MAX_CHARS]
    truncated = cut or len(shown) < len(text)
    return Preview("text", serializer, size, text=shown, truncated=truncated, verified=verified)


def _json(data: bytes, serializer: str, size: int, cut: bool, verified: bool) -> Preview:
    text = data.decode("utf-8", errors="replace")
    if not cut:
        with contextlib.suppress(ValueError):  # not JSON after all: shown as it is
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return _text(text, serializer, size, cut, verified)


def _hex(data: bytes, serializer: str, size: int, verified: bool) -> Preview:
    lines = []
    for start in range(0, min(len(data), HEX_BYTES), 16):
        chunk = data[start : start + 16]
        printable = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start:08x}  {chunk.hex(' '):<47}  {printable}")
    truncated = size > HEX_BYTES
    return Preview(
        "bytes", serializer, size, text="\n".join(lines), truncated=truncated, verified=verified
    )


def _array(data: bytes, size: int, verified: bool) -> Preview:
    """Shape and dtype from the `.npy` header: a Python literal, read without eval."""
    header = _npy_header(data)
    if header is None:
        return _none("numpy", size, "not an .npy header", verified=verified)
    shape = [int(n) for n in header.get("shape", ())]
    dtype = str(header.get("descr", "?"))
    order = "Fortran" if header.get("fortran_order") else "C"
    note = f"{len(shape)}-d array in {order} order"
    return Preview("array", "numpy", size, shape=shape, dtype=dtype, note=note, verified=verified)


def _npy_header(data: bytes) -> dict[str, Any] | None:
    if not data.startswith(_NPY_MAGIC) or len(data) < 10:
        return None
    major = data[6]
    width = 2 if major == 1 else 4
    length = int.from_bytes(data[8 : 8 + width], "little")
    start = 8 + width
    try:
        header = ast.literal_eval(data[start : start + length].decode("latin-1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def _table(data: bytes, serializer: str, size: int) -> Preview:
    try:  # imported by name: pyarrow ships no type information
        pa = importlib.import_module("pyarrow")
        pq = importlib.import_module("pyarrow.parquet")
    except ImportError:
        return _none(serializer, size, "install pyarrow (stardag[arrow]) to preview tables")
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        batch = next(parquet.iter_batches(batch_size=TABLE_ROWS), None)
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        return _none(serializer, size, f"not a readable Parquet table: {exc}")
    columns = [str(name) for name in parquet.schema_arrow.names]
    rows = [] if batch is None else [[_cell(v) for v in row.values()] for row in batch.to_pylist()]
    total = parquet.metadata.num_rows
    return Preview(
        "table",
        serializer,
        size,
        columns=columns,
        rows=rows,
        total_rows=total,
        truncated=total > len(rows),
    )


def _cell(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _pickle(size: int) -> Preview:
    return _none(
        "pickle",
        size,
        "a pickle is not loaded here: unpickling runs code. Load it with the task's own code "
        "(task.load(), or stardag show TASK)",
    )


def _none(serializer: str, size: int, note: str, *, verified: bool = True) -> Preview:
    return Preview("none", serializer, size, note=note, verified=verified)
