"""Action records: what the store knows about one task id, validated on every read.

A record is small JSON (sorted keys, compact): the task's spec, the digest of its
output, the serializer, the sizes, the blob's compression, what the task required,
and when it was made. Small outputs live inside it (`inline`, base64).

Records may come from another machine (a shared remote), so `from_json` trusts
nothing: every field is type-checked, every id and digest must be 64 lowercase hex
(so none can name a path outside the store), and the record must belong to the
task id it is stored under.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
import time
from dataclasses import dataclass, field, fields
from typing import Any

from stardag import _hashing
from stardag._errors import CorruptBlobError, InvalidRecordError

RECORD_SCHEMA = 1
COMPRESSIONS = ("zstd", "none")
_SERIALIZER_NAME = re.compile(r"[A-Za-z0-9_.:+-]{1,100}")


@dataclass(frozen=True)
class ActionRecord:
    """What the store knows about one task id: its spec and its output blob."""

    task_id: str
    spec: dict[str, Any]
    digest: str
    serializer: str
    size_raw: int
    size_stored: int
    created: str
    compression: str = "zstd"
    requires: list[str] = field(default_factory=list)
    dynamic: list[str] = field(default_factory=list)
    inline: str | None = None  # base64 of the raw bytes of a small output
    schema: int = RECORD_SCHEMA

    @classmethod
    def assemble(cls, **fields: Any) -> ActionRecord:
        """A record from parts the caller built and checked (a task's own save), every
        field but `schema` given: set in one step, not validated (`validate` checks a
        record from anywhere else)."""
        record = object.__new__(cls)
        record.__dict__.update(_DEFAULTS, **fields)
        return record

    def to_json(self) -> bytes:
        """The record as it is stored."""
        # A frozen dataclass without slots: its __dict__ is exactly its fields.
        return _ENCODER.encode(self.__dict__).encode()

    def inline_bytes(self) -> bytes | None:
        """The output's raw bytes when they live in the record, else None."""
        if self.inline is None:
            return None
        try:
            return base64.b64decode(self.inline, validate=True)
        except binascii.Error:
            raise CorruptBlobError(
                f"blob {self.digest} (output of task {self.task_id}) is corrupt: its inline "
                "bytes are not base64",
                digest=self.digest,
                task_id=self.task_id,
            ) from None

    @classmethod
    def from_json(cls, data: bytes, task_id: str) -> ActionRecord:
        """Parse and validate a stored record of `task_id` (`InvalidRecordError` if bad).

        A record of the shape this library writes is accepted by `_quick` (gc and verify
        parse every record of a store); anything else takes the full validation, which
        alone words the errors.
        """
        try:
            raw = _parse(data)
        except ValueError:
            raw = None
        else:
            record = _quick(cls, raw, task_id)
            if record is not None:
                return record
        return cls._validated(data, raw, task_id)

    @classmethod
    def _validated(cls, data: bytes, raw: Any, task_id: str) -> ActionRecord:
        try:
            if raw is None:
                raw = json.loads(data)
            if not isinstance(raw, dict):
                raise TypeError("it is not a JSON object")
            record = cls(**raw)
        except (ValueError, TypeError) as exc:
            raise InvalidRecordError(
                f"action record of task {task_id} is malformed: {exc}", task_id=task_id
            ) from None
        record.validate(task_id)
        return record

    def validate(self, task_id: str) -> None:
        """Check every field's type and format, and that the record belongs to `task_id`."""
        problems = _problems(self)
        if self.task_id != task_id:
            problems.append(f"it names task {self.task_id!r}")
        if problems:
            raise InvalidRecordError(
                f"action record of task {task_id} is invalid: {'; '.join(problems)}",
                task_id=task_id if _hashing.is_hex_key(task_id) else None,
                digest=self.digest if _hashing.is_hex_key(self.digest) else None,
            )


_FIELDS = tuple(sorted(f.name for f in fields(ActionRecord)))
_DEFAULTS = {"schema": RECORD_SCHEMA}
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_KEYS = frozenset(_FIELDS)
_DECODER = json.JSONDecoder()
# Task ids and digests joined by commas (the quick path checks them in one match).
_HEX_KEYS = re.compile(r"[0-9a-f]{64}(?:,[0-9a-f]{64})*")
_SERIALIZERS: set[str] = set()  # names seen valid (a store holds a handful)


def _parse(data: bytes) -> Any:
    """`json.loads(data)` for a record as this library writes it (UTF-8, nothing
    around the object): no encoding detection, no trailing-whitespace pass. Anything
    else goes to `json.loads` itself."""
    try:
        text = data.decode()
        if text[:1] == "{":
            value, end = _DECODER.raw_decode(text)
            if end == len(text):
                return value
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        pass
    return json.loads(data)


def _quick(cls: type[ActionRecord], raw: Any, task_id: str) -> ActionRecord | None:
    """The record in `raw` if it has every field, each of exactly the type and form
    `validate` wants, else None. A subset of what `validate` accepts, so None only
    means "take the full validation"; cheap enough for gc and verify, which parse
    every record of a store."""
    if type(raw) is not dict or raw.keys() != _KEYS:
        return None
    requires, dynamic, inline = raw["requires"], raw["dynamic"], raw["inline"]
    if type(requires) is not list or type(dynamic) is not list:
        return None
    try:  # a TypeError if any of them is not a string
        keys = ",".join([task_id, raw["digest"], *requires, *dynamic])
    except TypeError:
        return None
    # n keys of 64 hex make 65n - 1 characters with n - 1 commas: none inside a key
    if len(keys) != 65 * (2 + len(requires) + len(dynamic)) - 1:
        return None
    compression, serializer = raw["compression"], raw["serializer"]
    if not (
        raw["task_id"] == task_id
        and _HEX_KEYS.fullmatch(keys) is not None
        and type(raw["spec"]) is dict
        and type(raw["created"]) is str
        and (inline is None or type(inline) is str)
        and type(raw["size_raw"]) is int
        and raw["size_raw"] >= 0
        and type(raw["size_stored"]) is int
        and raw["size_stored"] >= 0
        and type(raw["schema"]) is int
        and raw["schema"] == RECORD_SCHEMA
        and type(compression) is str
        and compression in COMPRESSIONS
        and type(serializer) is str
        and (serializer in _SERIALIZERS or _valid_serializer(serializer))
    ):
        return None
    record = object.__new__(cls)
    record.__dict__.update(raw)  # the fields as `cls(**raw)` sets them, without 12 setattrs
    return record


def _valid_serializer(name: str) -> bool:
    if _SERIALIZER_NAME.fullmatch(name) is None:
        return False
    if len(_SERIALIZERS) < 64:
        _SERIALIZERS.add(name)
    return True


def _problems(record: ActionRecord) -> list[str]:
    problems = []
    if record.schema != RECORD_SCHEMA:
        problems.append(f"unsupported record schema {record.schema!r}")
    if not _hashing.is_hex_key(record.task_id):
        problems.append("its task id is not 64 lowercase hex characters")
    if not _hashing.is_hex_key(record.digest):
        problems.append(f"digest {record.digest!r} is not 64 lowercase hex characters")
    if not isinstance(record.spec, dict):
        problems.append("its spec is not an object")
    if not (isinstance(record.serializer, str) and _SERIALIZER_NAME.fullmatch(record.serializer)):
        problems.append(f"serializer {record.serializer!r} is not a valid name")
    for name in ("size_raw", "size_stored"):
        value = getattr(record, name)
        if type(value) is not int or value < 0:
            problems.append(f"{name} {value!r} is not a non-negative integer")
    if record.compression not in COMPRESSIONS:
        problems.append(f"compression {record.compression!r} is not one of {COMPRESSIONS}")
    if not isinstance(record.created, str):
        problems.append("created is not a string")
    for name in ("requires", "dynamic"):
        ids = getattr(record, name)
        if not isinstance(ids, list) or not all(_hashing.is_hex_key(i) for i in ids):
            problems.append(f"{name} is not a list of 64-hex task ids")
    if record.inline is not None and not isinstance(record.inline, str):
        problems.append("inline is not a base64 string")
    return problems


def now_iso() -> str:
    """The current UTC time, ISO 8601, as `datetime.now(timezone.utc).isoformat()` says it."""
    micros = time.time_ns() // 1000
    second, fraction = divmod(micros, 1_000_000)
    cached = _SECOND[0]
    if cached[0] != second:  # formatted once per second (one tuple: threads may race here)
        day_and_time = datetime.datetime.fromtimestamp(second, datetime.timezone.utc)
        cached = _SECOND[0] = (second, day_and_time.isoformat()[:19])
    return f"{cached[1]}.{fraction:06d}+00:00" if fraction else f"{cached[1]}+00:00"


_SECOND: list[tuple[int, str]] = [(-1, "")]  # the last second `now_iso` formatted
