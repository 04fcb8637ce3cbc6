"""Registry rows from tasks and action records: plain dicts, the same for every database.

No SQL here, so a build makes its rows without importing SQLAlchemy; `_writes`
(SQLAlchemy, any database) and `_lite` (sqlite3) write the very same dicts.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from stardag import _hashing

if TYPE_CHECKING:
    from stardag.store._record import ActionRecord

Row = dict[str, Any]


def spec_row(
    task_id: str,
    spec: Mapping[str, Any],
    seen: float,
    module: str | None = None,
    qualname: str | None = None,
    code_fingerprint: str | None = None,
) -> Row:
    """The tasks row of a task id known only by its spec (as in an action record)."""
    return {
        "id": task_id,
        "namespace": str(spec.get("namespace", "")),
        "name": str(spec.get("name", "")),
        "version": str(spec.get("version", "")),
        "spec": _hashing.canonical_json(spec).decode(),
        "module": module,
        "qualname": qualname,
        "fingerprint": code_fingerprint,
        "first_seen": seen,
    }


def output_row(
    record: ActionRecord,
    store_url: str | None,
    build_id: str | None,
    last_used: float | None = None,
) -> Row:
    """The outputs row of an action record in a store (`last_used` defaults to its creation).

    `build_id` None: an existing row keeps the build that wrote it.
    """
    created = parse_time(record.created)
    return {
        "task_id": record.task_id,
        "digest": record.digest,
        "serializer": record.serializer,
        "size_raw": record.size_raw,
        "size_stored": record.size_stored,
        "created": created,
        "build_id": build_id,
        "store": store_url,
        "last_used": created if last_used is None else last_used,
    }


def edge_rows(task_id: str, dep_ids: Iterable[str], kind: str) -> list[Row]:
    """Edge rows from one task to its dependencies of one kind (static or dynamic)."""
    return [{"task_id": task_id, "dep_id": dep, "kind": kind} for dep in dep_ids]


def parse_time(iso: str) -> float:
    """Seconds since the epoch of an ISO 8601 time (as action records write them)."""
    parsed = datetime.datetime.fromisoformat(iso)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()
