"""Claims: which builder is computing a task id right now, so each task is computed once.

A claim is one row of `claims` per task id: the holder (build id, host, pid), when
it was taken, and when it expires. A builder takes the claims of the tasks that
became ready together in one statement; it wins a task whose row is absent, released,
failed, or expired, and loses one that another builder holds and keeps renewing.
Expiry is judged by one clock: the database server's on PostgreSQL, this machine's
on SQLite (a SQLite registry is only ever shared by processes of one machine).

Rows stay after release (`released`, or `failed` with the error): the table says who
computed what under claims, and `generation` counts takeovers, so a builder that
won a fresh row knows nobody else computed the task since its own check.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, cast, func, or_, select, text, update
from sqlalchemy import Float as FloatType
from sqlalchemy.dialects import postgresql, sqlite

from stardag.registry import _models
from stardag.registry._claimstate import CHUNK as CHUNK
from stardag.registry._claimstate import FAILED as FAILED
from stardag.registry._claimstate import HELD as HELD
from stardag.registry._claimstate import MAX_ERROR as MAX_ERROR
from stardag.registry._claimstate import RELEASED as RELEASED
from stardag.registry._claimstate import Holder as Holder
from stardag.registry._claimstate import Seen as Seen
from stardag.registry._claimstate import Won as Won

CLAIMS: Table = _models.ClaimRow.__table__  # type: ignore[attr-defined]


def now(conn: Connection) -> Any:
    """Seconds since the epoch on the clock claims are judged by (a SQL expression)."""
    if conn.dialect.name == "postgresql":
        return cast(func.extract("epoch", func.clock_timestamp()), FloatType)
    return bindparam("now", time.time(), type_=FloatType)


def claim(conn: Connection, task_ids: Sequence[str], holder: Holder, ttl: float) -> list[Won]:
    """Claim these task ids for `holder`; the ones it won (held by nobody else, or expired)."""
    # Sorted and unique: two builders claiming overlapping sets lock rows in one order.
    ordered = sorted(set(task_ids))
    if conn.dialect.name == "postgresql":
        return _claim_array(conn, ordered, holder, ttl)
    won: list[Won] = []
    for start in range(0, len(ordered), CHUNK):
        won += _claim_chunk(conn, ordered[start : start + CHUNK], holder, ttl)
    return won


def _claim_chunk(
    conn: Connection, task_ids: Sequence[str], holder: Holder, ttl: float
) -> list[Won]:
    clock = now(conn)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [
        {
            "task_id": task_id,
            "build_id": holder.build_id,
            "host": holder.host,
            "pid": holder.pid,
            "claimed": clock,
            "expires": clock + ttl,
            "state": HELD,
            "generation": 1,
            "error": None,
        }
        for task_id in task_ids
    ]
    stmt = dialect.insert(CLAIMS).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["task_id"],
        set_={
            "build_id": stmt.excluded.build_id,
            "host": stmt.excluded.host,
            "pid": stmt.excluded.pid,
            "claimed": clock,
            "expires": clock + ttl,
            "state": HELD,
            "generation": CLAIMS.c.generation + 1,
            "error": None,
        },
        where=or_(CLAIMS.c.state != HELD, CLAIMS.c.expires < clock),
    ).returning(CLAIMS.c.task_id, CLAIMS.c.generation)
    return [Won(task_id, generation == 1) for task_id, generation in conn.execute(stmt)]


# On PostgreSQL one statement claims any number of ids, passed as one array: its text
# never changes, so it is prepared once, where a VALUES list of N rows would be compiled
# again for every N. Rows are inserted in the array's (sorted) order, the lock order.
_CLAIM_ARRAY = text(
    "INSERT INTO claims (task_id, build_id, host, pid, claimed, expires, state, generation, "
    "error) SELECT ids.task_id, :build_id, :host, :pid, clock.now, clock.now + :ttl, :held, 1, "
    "NULL FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY AS ids(task_id, n), "
    "(SELECT CAST(extract(epoch FROM clock_timestamp()) AS double precision) AS now) AS clock "
    "ORDER BY ids.n ON CONFLICT (task_id) DO UPDATE SET build_id = excluded.build_id, "
    "host = excluded.host, pid = excluded.pid, claimed = excluded.claimed, "
    "expires = excluded.expires, state = excluded.state, "
    "generation = claims.generation + 1, error = NULL "
    "WHERE claims.state != excluded.state OR claims.expires < excluded.claimed "
    "RETURNING task_id, generation"
)


def _claim_array(conn: Connection, task_ids: list[str], holder: Holder, ttl: float) -> list[Won]:
    params = {
        "ids": task_ids,
        "build_id": holder.build_id,
        "host": holder.host,
        "pid": holder.pid,
        "ttl": ttl,
        "held": HELD,
    }
    rows = conn.execute(_CLAIM_ARRAY, params)
    return [Won(task_id, generation == 1) for task_id, generation in rows]


def renew(conn: Connection, holder: Holder, ttl: float) -> int:
    """Push back the expiry of every claim `holder` still holds; how many it holds."""
    clock = now(conn)
    stmt = (
        update(CLAIMS)
        .where(CLAIMS.c.build_id == holder.build_id, CLAIMS.c.state == HELD)
        .values(expires=clock + ttl)
    )
    return int(conn.execute(stmt).rowcount or 0)


# Releases find their rows by task id (the primary key). Compared as it is, the holder's
# build id leads the planner (PostgreSQL's on a table without statistics, as SQLite's)
# to the build's index, and every release would walk every claim the build ever took:
# quadratic in the build's size. `coalesce` of a column that is never null hides it
# from that index (SQLite: `_lite.release`). One array: one statement, prepared once.
_RELEASE_ARRAY = text(
    "UPDATE claims SET state = :released, "
    "expires = CAST(extract(epoch FROM clock_timestamp()) AS double precision) "
    "WHERE task_id = ANY(CAST(:ids AS text[])) AND coalesce(build_id, '') = :build_id "
    "AND state = :held"
)


def release(conn: Connection, holder: Holder, done: Sequence[str], failed: dict[str, str]) -> None:
    """Release claims: tasks finished or given up (`done`), and failed ones with their errors."""
    if conn.dialect.name == "sqlite":
        from stardag.registry import _lite

        _lite.release(conn, holder, done, failed)  # the very statements the build's sqlite3 runs
        return
    if done:
        params = {"ids": list(done), "build_id": holder.build_id, "released": RELEASED}
        conn.execute(_RELEASE_ARRAY, {**params, "held": HELD})
    clock = now(conn)
    mine = and_(CLAIMS.c.build_id == holder.build_id, CLAIMS.c.state == HELD)
    for task_id, error in sorted(failed.items()):
        conn.execute(
            update(CLAIMS)
            .where(mine, CLAIMS.c.task_id == task_id)
            .values(state=FAILED, expires=clock, error=error[:MAX_ERROR])
        )


def poll(conn: Connection, task_ids: Sequence[str]) -> list[Seen]:
    """The claims on these task ids as they stand (a task without a row is absent)."""
    clock = now(conn)
    seen: list[Seen] = []
    for start in range(0, len(task_ids), 500):
        chunk = list(task_ids[start : start + 500])
        query = select(
            CLAIMS.c.task_id,
            CLAIMS.c.build_id,
            CLAIMS.c.state,
            (CLAIMS.c.expires < clock).label("expired"),
            CLAIMS.c.error,
        ).where(CLAIMS.c.task_id.in_(chunk))
        seen += [Seen(t, b, s, bool(x), e) for t, b, s, x, e in conn.execute(query)]
    return seen


def holders(conn: Connection) -> list[dict[str, Any]]:
    """Every claim row, newest first (for `stardag` commands and tests)."""
    query = select(CLAIMS).order_by(CLAIMS.c.claimed.desc())
    return [dict(row._mapping) for row in conn.execute(query)]
