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
        """Parse and validate a stored record of `task_id` (`InvalidRecordError` if bad)."""
        try:
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
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


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
    """The current UTC time, ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat()
