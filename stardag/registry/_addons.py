"""Tables the command line adds to a registry: pins, output deletions and audit verdicts.

They live on their own `MetaData`, apart from the versioned schema in `_models.py`,
and are created on first use (`CREATE TABLE IF NOT EXISTS`, in a write transaction),
so a registry made by any schema version gains them without a migration. Nothing
in the core schema points at them, and they only ever gain rows or columns' values.
"""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import Boolean, Column, Connection, Float, Index, MetaData, String, Table, inspect

from stardag._errors import RegistryUnwritableError
from stardag.registry._db import Registry, lock_schema

ADDONS = MetaData()

PINS = Table(
    "pins",
    ADDONS,
    Column("name", String, primary_key=True),
    Column("task_id", String, nullable=False),
    Column("created", Float, nullable=False),
    Column("username", String, nullable=True),
)

# An output row is deleted when a deletion newer than the row's `created` exists:
# rebuilding the same bytes later writes a newer `created`, which revives the row.
OUTPUT_DELETIONS = Table(
    "output_deletions",
    ADDONS,
    Column("task_id", String, primary_key=True),
    Column("digest", String, primary_key=True),
    Column("deleted", Float, nullable=False),
    Column("reason", String, nullable=False),  # gc, corrupt, missing
    Column("store", String, nullable=True),
)

AUDITS = Table(
    "audits",
    ADDONS,
    Column("task_id", String, primary_key=True),
    Column("audited", Float, primary_key=True),
    Column("verdict", String, nullable=False),  # reproduced, differs, failed
    Column("recorded_digest", String, nullable=True),
    Column("audit_digest", String, nullable=True),
    Column("upstream", Boolean, nullable=False),
    Column("root_id", String, nullable=False),  # the task the audit was asked for
    Column("error", String, nullable=True),
    Index("ix_audits_root_id", "root_id"),
)

_READY: weakref.WeakSet[Registry] = weakref.WeakSet()
_LOCK = threading.Lock()


def ensure(registry: Registry) -> None:
    """Create the add-on tables in `registry` if they are missing (once per object).

    Checked in a read transaction first, so a registry that has them all is never
    written to: the read-only commands work on a read-only registry.
    """
    with _LOCK:
        if registry in _READY:
            return

    def create(conn: Connection) -> None:
        lock_schema(conn)
        ADDONS.create_all(conn, checkfirst=True)

    if registry.read(_missing):
        registry.write(create)
    with _LOCK:
        _READY.add(registry)


def readable(registry: Registry) -> bool:
    """`ensure`, for readers: False when the tables are missing and cannot be made now.

    A read-only registry that never had a pin or an audit lacks the tables; to a
    reader that means no rows, not an error.
    """
    try:
        ensure(registry)
    except RegistryUnwritableError:
        return False
    return True


def _missing(conn: Connection) -> bool:
    present = set(inspect(conn).get_table_names())
    return any(name not in present for name in ADDONS.tables)
