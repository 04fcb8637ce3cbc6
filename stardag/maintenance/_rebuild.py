"""Rebuilding a task object from its recorded spec, for commands that must run or load it.

The spec comes from the registry (which also says which module holds the task's
code) or, failing that, from the task's action record. The module is imported
(current directory first, as `python -m` has it), the class found by namespace
and name, the canonical parameter values decoded back to Python values and
validated, dependencies rebuilt the same way. The rebuilt task must hash to the
id it was asked for; if the code changed since (a new version, a renamed field),
that is a `TaskImportError` that says so.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import pathlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stardag._errors import StardagError, TaskImportError
from stardag.maintenance._resolve import import_module
from stardag.task import _classes
from stardag.task._base import BaseTask

if TYPE_CHECKING:
    from stardag.registry import Registry
    from stardag.store._store import Store


@dataclass(frozen=True)
class Recorded:
    """What is known of a task id: its spec, and where its code lives if recorded."""

    task_id: str
    spec: dict[str, Any]
    module: str | None = None


def recorded(task_id: str, registry: Registry | None, stores: Sequence[Store]) -> Recorded:
    """The spec (and code module) of a task id, from the registry or an action record."""
    if registry is not None:
        row = _registry_row(task_id, registry)
        if row is not None:
            return row
    for store in stores:
        try:
            record = store.get_record(task_id)
        except StardagError:
            continue
        if record is not None:
            return Recorded(task_id, record.spec)
    raise TaskImportError(
        f"task {task_id} is in neither the registry nor the store, so it cannot be rebuilt",
        task_id=task_id,
    )


def _registry_row(task_id: str, registry: Registry) -> Recorded | None:
    from sqlalchemy import select

    from stardag.registry._models import TaskRow

    table = TaskRow.__table__  # type: ignore[attr-defined]
    query = select(table.c.spec, table.c.module).where(table.c.id == task_id)
    row = registry.read(lambda conn: conn.execute(query).first())
    if row is None:
        return None
    return Recorded(task_id, json.loads(row.spec), row.module)


def rebuild(task_id: str, registry: Registry | None, stores: Sequence[Store]) -> BaseTask:
    """The task object whose id is `task_id`, rebuilt from its recorded spec."""
    return _Rebuilder(registry, stores).task(task_id)


class _Rebuilder:
    def __init__(self, registry: Registry | None, stores: Sequence[Store]) -> None:
        self.registry = registry
        self.stores = stores
        self.done: dict[str, BaseTask] = {}

    def task(self, task_id: str) -> BaseTask:
        found = self.done.get(task_id)
        if found is None:
            found = self.done[task_id] = self._rebuild(
                recorded(task_id, self.registry, self.stores)
            )
        return found

    def _rebuild(self, known: Recorded) -> BaseTask:
        spec = known.spec
        cls = self._class(known)
        params = {name: self._decode(value) for name, value in spec.get("params", {}).items()}
        params["version"] = spec.get("version", "")
        try:
            task = cls.model_validate(params)
        except Exception as exc:  # noqa: BLE001  # validation or encoding: the code changed
            raise TaskImportError(
                f"task {known.task_id} cannot be rebuilt by {cls.__qualname__} from its "
                f"recorded parameters ({type(exc).__name__}: {exc}); has its code changed?",
                task_id=known.task_id,
            ) from None
        if task.id != known.task_id:
            raise TaskImportError(
                f"task {known.task_id} rebuilt by {cls.__qualname__} from its recorded spec "
                f"hashes to {task.id}: its code (version, fields or defaults) changed since",
                task_id=known.task_id,
            )
        return task

    def _class(self, known: Recorded) -> type[BaseTask]:
        namespace, name = str(known.spec.get("namespace", "")), str(known.spec.get("name", ""))
        if known.module:
            try:
                import_module(known.module, known.module)
            except StardagError as exc:
                raise TaskImportError(
                    f"task {known.task_id} ({name}) lives in module {known.module}, which "
                    f"cannot be imported: {exc}",
                    task_id=known.task_id,
                ) from None
        try:
            return _classes.resolve(namespace, name)
        except StardagError:
            where = f"module {known.module}" if known.module else "no recorded module"
            raise TaskImportError(
                f"task {known.task_id}: no task class namespace={namespace!r} name={name!r} "
                f"is defined ({where}); import its module first",
                task_id=known.task_id,
            ) from None

    def _decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == "$task":
                return self.task(inner)
            tagged = _TAGS.get(key)
            if tagged is not None:
                return tagged(self, inner)
        return {(k[1:] if k.startswith("$$") else k): self._decode(v) for k, v in value.items()}


def _float(_: _Rebuilder, value: str) -> float:
    return float(value)


def _tuple(r: _Rebuilder, value: list[Any]) -> tuple[Any, ...]:
    return tuple(r._decode(v) for v in value)


def _set(r: _Rebuilder, value: list[Any]) -> set[Any]:
    return {_hashable(r._decode(v)) for v in value}


def _dict(r: _Rebuilder, value: list[list[Any]]) -> dict[Any, Any]:
    return {_hashable(r._decode(k)): r._decode(v) for k, v in value}


def _fields(r: _Rebuilder, value: list[Any]) -> dict[str, Any]:
    return {name: r._decode(v) for name, v in value[1].items()}


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _timedelta(_: _Rebuilder, value: list[int]) -> datetime.timedelta:
    return datetime.timedelta(days=value[0], seconds=value[1], microseconds=value[2])


_TAGS: dict[str, Callable[[_Rebuilder, Any], Any]] = {
    "$float": _float,
    "$tuple": _tuple,
    "$set": _set,
    "$dict": _dict,
    "$model": _fields,
    "$dataclass": _fields,
    "$enum": lambda r, v: r._decode(v),
    "$bytes": lambda _, v: base64.b64decode(v),
    "$datetime": lambda _, v: datetime.datetime.fromisoformat(v),
    "$date": lambda _, v: datetime.date.fromisoformat(v),
    "$time": lambda _, v: datetime.time.fromisoformat(v),
    "$timedelta": _timedelta,
    "$decimal": lambda _, v: decimal.Decimal(v),
    "$uuid": lambda _, v: uuid.UUID(v),
    "$path": lambda _, v: pathlib.PurePosixPath(v),
}
