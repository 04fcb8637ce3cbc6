"""Audit verdicts in the registry: did re-running a task reproduce its recorded output?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from stardag.registry._addons import AUDITS, ensure, readable
from stardag.registry._db import Registry, resolve

REPRODUCED = "reproduced"  # the re-run wrote the recorded digest
DIFFERS = "differs"  # the re-run wrote other bytes: the task is not deterministic
FAILED = "failed"  # the re-run raised
UNRECORDED = "unrecorded"  # there was no recorded output to compare with


@dataclass(frozen=True)
class Verdict:
    """One task's audit: when, the verdict, and both digests."""

    task_id: str
    audited: float
    verdict: str
    recorded_digest: str | None
    audit_digest: str | None
    upstream: bool
    root_id: str
    error: str | None = None


def record_verdicts(verdicts: Sequence[Verdict], registry: Registry | str | None = None) -> None:
    """Store audit verdicts (one row per task per audit)."""
    opened = resolve(registry)
    ensure(opened)
    rows = [v.__dict__ for v in verdicts]
    if rows:
        opened.write(lambda conn: conn.execute(AUDITS.insert(), rows))


def verdicts(task_id: str | None = None, registry: Registry | str | None = None) -> list[Verdict]:
    """Audit verdicts, newest first: of one task id, or of every task."""
    opened = resolve(registry)
    if not readable(opened):
        return []
    return opened.read(lambda conn: _select(conn, task_id))


def _select(conn: Connection, task_id: str | None) -> list[Verdict]:
    query = select(AUDITS).order_by(AUDITS.c.audited.desc(), AUDITS.c.task_id)
    if task_id is not None:
        query = query.where(AUDITS.c.task_id == task_id)
    return [Verdict(**row._mapping) for row in conn.execute(query)]
