"""Parameters for people: a spec's canonical encoding, shown the way the user wrote it.

The canonical spec tags every value JSON cannot tell apart (`{"$date": ...}`,
`{"$tuple": [...]}`, `{"$model": [name, fields]}`, see `stardag._hashing`). What
`explain` and lineage labels show is decoded: paths without tags (`cfg.layers[1]`,
not `cfg.$model[1].layers[1]`) and values as Python writes them (`(1, 2)`,
`datetime.date(2024, 1, 1)`, `Cfg(lr=0.1, layers=[1, 2])`). Decoding is for display
only and never fails: a tag it does not know is shown as it is stored.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import pathlib
import reprlib
import uuid
from collections.abc import Callable, Iterable
from typing import Any

_ABBREVIATE = reprlib.Repr()
_ABBREVIATE.maxstring = 24
_ABBREVIATE.maxother = 40
_ABBREVIATE.maxlist = _ABBREVIATE.maxtuple = _ABBREVIATE.maxset = _ABBREVIATE.maxdict = 4
SHORT_ID = 6  # a dependency in a label: the first characters of its id


class Shown:
    """A value that prints as the given text (a model, a set of unhashable values)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Shown) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def is_task(value: Any) -> bool:
    """Whether an encoded value is a dependency, `{"$task": <id>}`."""
    return isinstance(value, dict) and len(value) == 1 and "$task" in value


def _tag(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        if key.startswith("$") and not key.startswith("$$"):
            return str(key)
    return None


def decode(value: Any) -> Any:
    """An encoded value as Python writes it (for display: `repr` of it reads naturally)."""
    tag = _tag(value)
    if tag is None:
        if isinstance(value, list):
            return [decode(v) for v in value]
        if isinstance(value, dict):
            return {_unescape(k): decode(v) for k, v in value.items()}
        return value
    decoder = _DECODERS.get(tag)
    if decoder is None:
        return value
    try:
        return decoder(value[tag])
    except (TypeError, ValueError, KeyError, IndexError, decimal.InvalidOperation, binascii.Error):
        return value


def _unescape(key: str) -> str:
    return key[1:] if key.startswith("$$") else key


def _named(pair: Any) -> Shown:
    name, fields = pair
    inner = ", ".join(f"{k}={decode(v)!r}" for k, v in fields.items())
    return Shown(f"{name}({inner})")


def _set(items: list[Any]) -> Any:
    values = [decode(v) for v in items]
    try:
        return set(values)
    except TypeError:
        return Shown("{" + ", ".join(repr(v) for v in values) + "}")


def _pairs(pairs: list[Any]) -> Any:
    decoded = [(decode(k), decode(v)) for k, v in pairs]
    try:
        return dict(decoded)
    except TypeError:
        return Shown("{" + ", ".join(f"{k!r}: {v!r}" for k, v in decoded) + "}")


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "$task": lambda v: Shown(f"<task {str(v)[:12]}>"),
    "$float": float,
    "$tuple": lambda v: tuple(decode(x) for x in v),
    "$set": _set,
    "$dict": _pairs,
    "$model": _named,
    "$dataclass": _named,
    "$bytes": lambda v: base64.b64decode(v),
    "$enum": decode,
    "$datetime": datetime.datetime.fromisoformat,
    "$date": datetime.date.fromisoformat,
    "$time": datetime.time.fromisoformat,
    "$timedelta": lambda v: datetime.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "$decimal": decimal.Decimal,
    "$uuid": uuid.UUID,
    "$path": pathlib.PurePosixPath,
}


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """The encoded leaves of a spec by the path a user would write (`cfg.layers[1]`).

    A dependency, and every tagged scalar (a date, a path), is one leaf; a tuple or
    set is indexed like a list, a model or dataclass by its field names.
    """
    tag = _tag(value)
    if tag in ("$model", "$dataclass"):
        return _children(value[tag][1].items(), path, "{}.{}")
    if tag in ("$tuple", "$set"):
        return _children(enumerate(value[tag]), path, "{}[{}]")
    if tag is None and isinstance(value, dict) and value:
        return _children(((_unescape(k), v) for k, v in value.items()), path, "{}.{}")
    if tag is None and isinstance(value, list) and value:
        return _children(enumerate(value), path, "{}[{}]")
    return {path: value}


def _children(items: Iterable[tuple[Any, Any]], path: str, form: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in items:
        out |= leaves(item, form.format(path, key) if path else str(key))
    return out


def show(value: Any) -> str:
    """An encoded value, decoded and printed (a dependency as `task <id>`)."""
    if is_task(value):
        return f"task {value['$task'][:12]}"
    return repr(decode(value))


def label(name: str, params: dict[str, Any], keys: Iterable[str] | None = None) -> str:
    """`name(a=1, data=1a2b3c…)`: a task with its parameters, each shortened.

    Only `keys` are shown when given (an empty selection shows the bare name).
    """
    chosen = list(params) if keys is None else [k for k in params if k in set(keys)]
    if not chosen:
        return name
    parts = []
    for key in sorted(chosen):
        value = params[key]
        if is_task(value):
            parts.append(f"{key}={value['$task'][:SHORT_ID]}…")
        else:
            parts.append(f"{key}={_ABBREVIATE.repr(decode(value))}")
    return f"{name}({', '.join(parts)})"


MAX_PARAMS = 6  # more parameters than this in a label: the first ones, then "…"


def distinguishing(tasks: Iterable[tuple[str, str, dict[str, Any]]]) -> dict[str, str]:
    """Labels that tell tasks apart, from (task id, family name, encoded params).

    Where several tasks share a family, each shows the parameters whose values
    differ among them (`split(part='test')`, `scale(data=1a2b3c…)`); a task alone
    in its family shows its plain parameters (its dependencies are drawn already).
    """
    families: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for task_id, family, params in tasks:
        families.setdefault(family, []).append((task_id, params))
    labels = {}
    for family, members in families.items():
        if len(members) == 1:
            keys = sorted(k for k, v in members[0][1].items() if not is_task(v))
        else:
            every = sorted({k for _, params in members for k in params})
            keys = [k for k in every if len({repr(p.get(k)) for _, p in members}) > 1]
        for task_id, params in members:
            text = label(family, params, keys[:MAX_PARAMS])
            labels[task_id] = text[:-1] + ", …)" if len(keys) > MAX_PARAMS else text
    return labels
