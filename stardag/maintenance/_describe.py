"""Everything known about one task id, gathered for `stardag status` and `stardag show`.

From the store: its action record (output digest, serializer, sizes) and whether
it is complete. A task with a completeness of its own (an `sd.TargetTask`, an
`sd.BaseTask`) has no action record: its code is imported and asked, as a build
would. From the registry: its spec and code location, the runs that built or
reused it, the build that produced its current output, the fingerprint of the
code that ran, and its audit verdicts. `preview` loads the value itself
(rebuilding the task from its spec so its own serializer reads it).
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stardag._errors import StardagError, TaskNotFoundError
from stardag.store._record import ActionRecord
from stardag.store._store import Store

if TYPE_CHECKING:
    from stardag.registry import LineageNode, Registry
    from stardag.task._base import BaseTask

PREVIEW_CHARS = 600
PREVIEW_MAX_BYTES = 64 << 20  # larger outputs are described, not loaded


def find_record(task_id: str, stores: Sequence[Store]) -> tuple[Store | None, ActionRecord | None]:
    """The first store holding an action record of the task, and that record."""
    for store in stores:
        record = store.get_record(task_id)
        if record is not None:
            return store, record
    return None, None


def status(task_id: str, registry: Registry | None, stores: Sequence[Store]) -> dict[str, Any]:
    """Whether the task is complete, its output, its last run and last audit."""
    store, record = find_record(task_id, stores)
    facts: dict[str, Any] = {
        "task_id": task_id,
        "name": record.spec.get("name") if record else None,
        "namespace": record.spec.get("namespace") if record else None,
        "complete": _complete(task_id, store, registry, stores),
        "store": store.url if store else None,
        "digest": record.digest if record else None,
        "last_run": None,
        "last_audit": None,
    }
    if registry is not None:
        facts |= _registry_status(task_id, registry)
    return facts


def _complete(
    task_id: str, store: Store | None, registry: Registry | None, stores: Sequence[Store]
) -> bool:
    """The store's verdict, or for a task that judges itself, its own `complete()`."""
    if store is not None:
        return store.is_complete(task_id)
    task = self_judging(task_id, registry, stores)
    try:
        return task is not None and bool(task.complete())
    except Exception:  # noqa: BLE001  # its complete() fails: not known to be complete
        return False


def self_judging(
    task_id: str, registry: Registry | None, stores: Sequence[Store]
) -> BaseTask | None:
    """The task of an id if it judges its own completeness (not by the store), else None."""
    from stardag.maintenance._rebuild import rebuild
    from stardag.task._stored import Task

    if registry is None:
        return None
    try:
        task = rebuild(task_id, registry, stores)
    except StardagError:  # its code is gone or changed: nothing to ask
        return None
    return None if isinstance(task, Task) else task


def _registry_status(task_id: str, registry: Registry) -> dict[str, Any]:
    import stardag.registry
    from stardag.registry._audits import verdicts

    found: dict[str, Any] = {}
    node = _node(task_id, registry)
    if node is not None and node.known:
        found |= {"name": node.name, "namespace": node.namespace}
        runs = stardag.registry.history(task_id, limit=1, registry=registry)
        found["last_run"] = runs[0] if runs else None
    audits = verdicts(task_id, registry)
    found["last_audit"] = audits[0] if audits else None
    return found


def _node(task_id: str, registry: Registry) -> LineageNode | None:
    """The registry's node for a task id (spec, code, newest output), if it knows it."""
    import stardag.registry

    try:
        return stardag.registry.lineage(task_id, "up", 0, registry=registry)[task_id]
    except TaskNotFoundError:
        return None


def show(task_id: str, registry: Registry | None, stores: Sequence[Store]) -> dict[str, Any]:
    """Spec, output, producing build, code and a preview of the value of one task."""
    facts = status(task_id, registry, stores)
    store, record = find_record(task_id, stores)
    facts["spec"] = record.spec if record else None
    facts["output"] = _output(record) if record else None
    facts |= {"module": None, "qualname": None, "fingerprint": None, "produced_by": None}
    if registry is not None:
        facts |= _registry_show(task_id, record, registry)
    facts["preview"] = preview(task_id, record, store, registry, stores)
    return facts


def _output(record: ActionRecord) -> dict[str, Any]:
    return {
        "digest": record.digest,
        "serializer": record.serializer,
        "size_raw": record.size_raw,
        "size_stored": record.size_stored,
        "compression": record.compression,
        "inline": record.inline is not None,
        "created": record.created,
    }


def _registry_show(task_id: str, record: ActionRecord | None, registry: Registry) -> dict[str, Any]:
    """Code location and fingerprint, and the build that wrote the current output."""
    import stardag.registry

    node = _node(task_id, registry)
    if node is None or not node.known:
        return {}
    found: dict[str, Any] = {
        "module": node.module,
        "qualname": node.qualname,
        "fingerprint": node.fingerprint,
    }
    if record is None:
        found["spec"] = {
            "key_schema": 1,
            "namespace": node.namespace,
            "name": node.name,
            "version": node.version,
            "params": node.params,
        }
    current = record is None or node.digest == record.digest
    if node.build_id and current:
        found["produced_by"] = stardag.registry.build(node.build_id, registry=registry)
    return found


def preview(
    task_id: str,
    record: ActionRecord | None,
    store: Store | None,
    registry: Registry | None,
    stores: Sequence[Store],
) -> str | None:
    """A short repr of the task's value; None if it has no output."""
    if record is None or store is None:
        return None
    if record.size_raw > PREVIEW_MAX_BYTES:
        return f"<{record.size_raw} bytes, {record.serializer}: too large to preview>"
    value = _load(task_id, registry, stores)
    if value is not _UNLOADED:
        return _short(value)
    return _raw_preview(record, store)


_UNLOADED = object()


def _load(task_id: str, registry: Registry | None, stores: Sequence[Store]) -> Any:
    from stardag.maintenance._rebuild import rebuild

    try:
        task = rebuild(task_id, registry, stores)
        load = getattr(task, "load", None)
        return load() if callable(load) else _UNLOADED
    except Exception:  # noqa: BLE001  # its code is gone or fails: fall back to the bytes
        return _UNLOADED


def _raw_preview(record: ActionRecord, store: Store) -> str:
    if record.serializer not in ("json", "text"):
        return f"<{record.size_raw} bytes, {record.serializer}; its task's code can load it>"
    try:
        data = store.read_output(record)
    except StardagError as exc:
        return f"<unreadable: {exc}>"
    text = data.decode("utf-8", errors="replace")
    if record.serializer == "json":
        try:
            return _short(json.loads(text))
        except ValueError:
            pass
    return _short(text)


def _short(value: Any) -> str:
    shortened = reprlib.Repr()
    shortened.maxstring = 200
    shortened.maxother = 200
    shortened.maxlist = shortened.maxtuple = shortened.maxset = shortened.maxdict = 20
    text = shortened.repr(value)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 3] + "..."
