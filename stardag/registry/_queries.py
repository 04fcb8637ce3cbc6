"""Registry questions the command line asks that `sd.registry` does not: recent runs."""

from __future__ import annotations

from sqlalchemy import Connection

from stardag.registry._history import _runs
from stardag.registry._info import RunInfo
from stardag.registry._writes import RUNS


def recent_runs(conn: Connection, limit: int | None = 50) -> list[RunInfo]:
    """The newest runs of every task, newest first."""
    query = _runs().order_by(RUNS.c.started.desc(), RUNS.c.build_id).limit(limit)
    return [RunInfo.from_row(row) for row in conn.execute(query)]
