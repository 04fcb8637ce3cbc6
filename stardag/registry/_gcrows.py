"""What gc and repair ask the registry of outputs, and mark deleted.

Output rows are never removed: a row is marked deleted in `output_deletions` (see
`_addons`). What gc's mark and verify read in bulk is `_gcreads`'.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from stardag.registry import _models
from stardag.registry._addons import OUTPUT_DELETIONS

OUTPUTS: Table = _models.OutputRow.__table__  # type: ignore[attr-defined]
CHUNK = 500


@dataclass(frozen=True)
class OutputRef:
    """An output row: a task's output blob, with whether it is marked deleted."""

    task_id: str
    digest: str
    size_raw: int
    size_stored: int
    created: float
    store: str | None
    deleted: bool


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


# -- outputs and their deletion ----------------------------------------------------------------
def _times_deleted() -> Any:
    """How often an output row's blob was marked deleted since the row was written."""
    return (
        select(func.count())
        .select_from(OUTPUT_DELETIONS)
        .where(
            OUTPUT_DELETIONS.c.task_id == OUTPUTS.c.task_id,
            OUTPUT_DELETIONS.c.digest == OUTPUTS.c.digest,
            OUTPUT_DELETIONS.c.deleted >= OUTPUTS.c.created,
        )
        .scalar_subquery()
    )


def outputs(conn: Connection, stores: Collection[str]) -> list[OutputRef]:
    """Output rows written to one of `stores` (or to an unrecorded store)."""
    deleted = _times_deleted()
    query = select(OUTPUTS, deleted.label("is_deleted")).where(
        OUTPUTS.c.store.in_(list(stores)) | OUTPUTS.c.store.is_(None)
    )
    return [
        OutputRef(
            r.task_id, r.digest, r.size_raw, r.size_stored, r.created, r.store, r.is_deleted > 0
        )
        for r in conn.execute(query)
    ]


def mark_deleted(
    conn: Connection, keys: Collection[tuple[str, str]], reason: str, store: str, when: float
) -> None:
    """Mark output rows (task id, digest) deleted from `store` at `when`, for `reason`."""
    if not keys:
        return
    rows = [
        {"task_id": t, "digest": d, "deleted": when, "reason": reason, "store": store}
        for t, d in keys
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(OUTPUT_DELETIONS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["task_id", "digest"],
        set_={"deleted": stmt.excluded.deleted, "reason": stmt.excluded.reason},
    )
    conn.execute(stmt, rows)


def outputs_of_digests(
    conn: Connection, digests: Collection[str], stores: Collection[str]
) -> list[tuple[str, str]]:
    """(task id, digest) of every output row of these digests in one of `stores`."""
    pairs: list[tuple[str, str]] = []
    in_store = OUTPUTS.c.store.in_(list(stores)) | OUTPUTS.c.store.is_(None)
    for chunk in _chunks(list(digests)):
        query = select(OUTPUTS.c.task_id, OUTPUTS.c.digest).where(
            OUTPUTS.c.digest.in_(chunk), in_store
        )
        pairs.extend((t, d) for t, d in conn.execute(query))
    return pairs
