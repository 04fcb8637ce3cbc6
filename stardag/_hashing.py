"""Identity: canonical, type-tagged encoding of parameters, and the blake3 keys.

A task id is `blake3(TASK_ID_PREFIX + canonical_json(spec))`, where the spec is

    {"key_schema": 1, "namespace": ..., "name": ..., "version": ..., "params": {...}}

and every dependency appears in `params` as `{"$task": <its id>}` (a Merkle tree).
A blob digest is plain `blake3(uncompressed bytes)`, so `b3sum` agrees with it.

Canonical means: sorted keys, no whitespace, UTF-8, and every value that JSON
cannot tell apart from another is tagged with a one-key object `{"$<tag>": ...}`
(a tuple is not a list, a date is not a string). User dict keys that start with
`$` are escaped with a second `$`, so user data can never forge a tag.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import json
import math
import pathlib
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from blake3 import blake3
from pydantic import BaseModel

# NEVER CHANGE these two constants: every stored task id is derived from them.
# A deliberate change to key derivation bumps KEY_SCHEMA and the golden tests.
KEY_SCHEMA = 1
TASK_ID_PREFIX = b"stardag:task:v1\x00"

JSON = None | bool | int | float | str | list["JSON"] | dict[str, "JSON"]


class Unencodable(TypeError):
    """Raised internally when a value has no canonical encoding."""


def task_id_of(spec: Mapping[str, Any]) -> str:
    """The task id for a spec that is already canonically encoded."""
    return task_id_of_canonical(canonical_json(spec))


def task_id_of_canonical(canonical: bytes) -> str:
    """The task id for a spec's canonical JSON bytes (`canonical_json(spec)`)."""
    return blake3(TASK_ID_PREFIX + canonical).hexdigest()


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON bytes of an already-encoded value."""
    return _CANONICAL.encode(obj).encode()


def digest_bytes(data: bytes | memoryview) -> str:
    """The blob digest of some bytes: blake3 hex of the uncompressed bytes."""
    return blake3(data).hexdigest()


def new_hasher() -> Any:
    """A streaming blake3 hasher (`update()` then `hexdigest()`)."""
    return blake3()


_HEX_KEY = re.compile(r"[0-9a-f]{64}")
HEX_KEY_FULLMATCH = _HEX_KEY.fullmatch  # a str of a key's shape: a match, else None


def is_hex_key(value: str) -> bool:
    """Whether a string has the shape of a task id or digest (64 lowercase hex)."""
    return isinstance(value, str) and _HEX_KEY.fullmatch(value) is not None


def encode(value: Any) -> Any:
    """Encode a parameter value canonically; raises `Unencodable` if it cannot be."""
    kind = type(value)
    fast = _FAST.get(kind)
    if fast is not None:
        return fast(value)
    for base, encoder in _BY_BASE:
        if isinstance(value, base):
            return encoder(value)
    raise Unencodable(f"a value of type {kind.__qualname__} has no canonical encoding")


def register_encoder(base: type, encoder: Callable[[Any], Any]) -> None:
    """Encode instances of `base` (and subclasses) with `encoder`, ahead of the built-ins."""
    _BY_BASE.insert(0, (base, encoder))


def _identity(value: Any) -> Any:
    return value


def _float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return {"$float": repr(value)}


def _list(value: list[Any]) -> list[Any]:
    return [encode(v) for v in value]


def _tuple(value: tuple[Any, ...]) -> Any:
    return {"$tuple": [encode(v) for v in value]}


def _set(value: set[Any] | frozenset[Any]) -> Any:
    items = [encode(v) for v in value]
    items.sort(key=canonical_json)
    return {"$set": items}


def _dict(value: Mapping[Any, Any]) -> Any:
    if all(type(k) is str for k in value):
        return {("$" + k if k.startswith("$") else k): encode(v) for k, v in value.items()}
    pairs = [[encode(k), encode(v)] for k, v in value.items()]
    pairs.sort(key=lambda pair: canonical_json(pair[0]))
    return {"$dict": pairs}


def _model(value: BaseModel) -> Any:
    task_id = getattr(value, "__stardag_task_id__", None)
    if isinstance(task_id, str):
        return {"$task": task_id}
    fields = {name: encode(getattr(value, name)) for name in type(value).model_fields}
    return {"$model": [type(value).__name__, fields]}


def _dataclass(value: Any) -> Any:
    fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return {"$dataclass": [type(value).__name__, fields]}


def _bytes(value: bytes) -> Any:
    return {"$bytes": base64.b64encode(value).decode()}


_FAST: dict[type, Callable[[Any], Any]] = {
    type(None): _identity,
    bool: _identity,
    int: _identity,
    str: _identity,
    float: _float,
    list: _list,
    tuple: _tuple,
    dict: _dict,
    set: _set,
    frozenset: _set,
    bytes: _bytes,
}

# Order matters: bool before int, datetime before date, Enum before its mixin types.
_BY_BASE: list[tuple[type | tuple[type, ...], Callable[[Any], Any]]] = [
    (enum.Enum, lambda v: {"$enum": encode(v.value)}),
    (bool, _identity),
    (int, int),
    (float, lambda v: _float(float(v))),
    (str, str),
    (bytes, _bytes),
    (datetime.datetime, lambda v: {"$datetime": v.isoformat()}),
    (datetime.date, lambda v: {"$date": v.isoformat()}),
    (datetime.time, lambda v: {"$time": v.isoformat()}),
    (datetime.timedelta, lambda v: {"$timedelta": [v.days, v.seconds, v.microseconds]}),
    (decimal.Decimal, lambda v: {"$decimal": str(v)}),
    (uuid.UUID, lambda v: {"$uuid": str(v)}),
    (pathlib.PurePath, lambda v: {"$path": v.as_posix()}),
    (BaseModel, _model),
    (Mapping, _dict),
    (list, _list),
    (tuple, _tuple),
    ((set, frozenset), _set),
]


def _encode_dataclass_hook(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _dataclass(value)
    raise Unencodable(f"a value of type {type(value).__qualname__} has no canonical encoding")


_BY_BASE.append((object, _encode_dataclass_hook))
