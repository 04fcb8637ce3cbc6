"""Multi-row INSERTs for SQLite: one statement per ~999 bound values, not one per row.

`sqlite3`'s executemany steps its statement once per row and releases the GIL
around every step. While a build's worker threads run, each re-acquisition waits
its turn and forces a thread switch, so row-at-a-time writes cost a build far
more CPU than the rows themselves. A statement that inserts a hundred rows steps
once. The conflict clauses are SQLite's upsert syntax and mean exactly what the
portable statements in `_writes` mean (a test writes through both and compares).

Statements come in few sizes: full ones of `per` rows, and a shorter rest split
into powers of two. The driver keeps every distinct statement it prepared (up to
128), each holding a compiled program as long as its text; one size per rest
length would have a long build hold a hundred of them, megabytes that grow with
the build.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class Executes(Protocol):
    """A connection that runs a driver-level statement: SQLAlchemy's, or `_lite`'s."""

    def exec_driver_sql(self, sql: str, params: Any = ..., /) -> Any:
        """Run one statement with positional parameters."""


MAX_VARIABLES = 999  # SQLite's limit on bound values per statement before 3.32

TASKS = (
    "ON CONFLICT (id) DO UPDATE SET module = excluded.module, "
    "qualname = excluded.qualname, fingerprint = excluded.fingerprint "
    "WHERE excluded.fingerprint IS NOT NULL AND tasks.fingerprint IS NOT excluded.fingerprint"
)
OUTPUTS = (
    "ON CONFLICT (task_id, digest) DO UPDATE SET created = excluded.created, "
    "build_id = coalesce(excluded.build_id, outputs.build_id), store = excluded.store, "
    "last_used = max(coalesce(outputs.last_used, 0.0), coalesce(excluded.last_used, 0.0)) "
    "WHERE excluded.created >= outputs.created"
)
NOTHING = "ON CONFLICT DO NOTHING"


def insert_many(
    conn: Executes, table: str, rows: Sequence[Mapping[str, Any]], conflict: str
) -> None:
    """Insert rows (dicts with the same keys) into `table`, a few hundred per statement."""
    if not rows:
        return
    columns = tuple(rows[0])
    pick = operator.itemgetter(*columns)
    per = max(1, MAX_VARIABLES // len(columns))
    start = 0
    for count in _chunks(len(rows), per):
        chunk = rows[start : start + count]
        start += count
        values = tuple(itertools.chain.from_iterable(map(pick, chunk)))
        conn.exec_driver_sql(_statement(table, columns, count, conflict), values)


def _chunks(total: int, per: int) -> list[int]:
    """Row counts per statement: `per` while that many are left, then powers of two."""
    counts = [per] * (total // per)
    rest = total % per
    while rest:
        size = 1 << (rest.bit_length() - 1)
        counts.append(size)
        rest -= size
    return counts


@functools.lru_cache(maxsize=64)
def _statement(table: str, columns: tuple[str, ...], count: int, conflict: str) -> str:
    group = "(" + ", ".join("?" * len(columns)) + ")"
    values = ", ".join([group] * count)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} {conflict}"
