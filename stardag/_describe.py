"""Everything known about one task id, gathered for `stardag status` and `stardag show`.

From the store: its action record (output digest, serializer, sizes) and whether
it is complete. From the registry: its spec and code location, the runs that
built or reused it, the build that produced its current output, the fingerprint
of the code that ran, and its audit verdicts. `preview` loads the value itself
(rebuilding the task from its spec so its own serializer reads it).
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stardag._errors import StardagError
from stardag._record import ActionRecord
from stardag._store import Store

if TYPE_CHECKING:
    from stardag.registry import Registry

PREVIEW_CHARS = 600


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
        "complete": bool(store and store.is_complete(task_id)),
        "store": store.url if store else None,
        "digest": record.digest if record else None,
        "last_run": None,
        "last_audit": None,
    }
    if registry is not None:
        facts |= _registry_status(task_id, registry)
    return facts


def _registry_status(task_id: str, registry: Registry) -> dict[str, Any]:
    from stardag.registry import _queries
    from stardag.registry._audits import verdicts

    row = registry.read(lambda conn: _queries.task(conn, task_id))
    runs = registry.read(lambda conn: _queries.runs(conn, task_id, limit=1))
    audits = verdicts(task_id, registry)
    found: dict[str, Any] = {"last_run": runs[0] if runs else None}
    found["last_audit"] = audits[0].__dict__ if audits else None
    if row is not None:
        found |= {"name": row["name"], "namespace": row["namespace"]}
    return found


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
    from stardag.registry import _queries

    row = registry.read(lambda conn: _queries.task(conn, task_id))
    found: dict[str, Any] = {}
    if row is not None:
        found = {k: row[k] for k in ("module", "qualname", "fingerprint")}
        found["spec"] = row["spec"] if record is None else record.spec
    outputs = registry.read(lambda conn: _queries.outputs(conn, task_id))
    current = [o for o in outputs if record is None or o["digest"] == record.digest]
    build_id = current[0]["build_id"] if current else None
    if build_id:
        build = registry.read(lambda conn: _queries.build(conn, build_id))
        runs = registry.read(lambda conn: _queries.build_runs(conn, build_id))
        ran = [r for r in runs if r["task_id"] == task_id]
        found["produced_by"] = build
        if ran and ran[0]["fingerprint"]:
            found["fingerprint"] = ran[0]["fingerprint"]
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
    value = _load(task_id, registry, stores)
    if value is not _UNLOADED:
        return _short(value)
    return _raw_preview(record, store)


_UNLOADED = object()


def _load(task_id: str, registry: Registry | None, stores: Sequence[Store]) -> Any:
    from stardag._rebuild import rebuild

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
