"""Runs, builds and outputs: `history`, `builds`, `build`, `producers`, `outputs`.

Each function takes an open connection (run it inside `Registry.read`) and
returns the plain objects of `_info`.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, func, select

from stardag.registry._info import BuildInfo, OutputInfo, Producer, RunInfo, when
from stardag.registry._writes import BUILDS, ENVIRONMENTS, OUTPUTS, RUNS, TASKS, chunks

_BUILD_ENV = (
    BUILDS.c.host,
    BUILDS.c.username,
    BUILDS.c.python_version,
    BUILDS.c.platform,
    BUILDS.c.stardag_version,
    BUILDS.c.env_digest,
    BUILDS.c.git_commit,
    BUILDS.c.git_dirty,
)


def _runs() -> Select[Any]:
    """Runs joined with their task's name and their build's environment."""
    return (
        select(RUNS, TASKS.c.namespace, TASKS.c.name, *_BUILD_ENV)
        .join(TASKS, TASKS.c.id == RUNS.c.task_id)
        .join(BUILDS, BUILDS.c.id == RUNS.c.build_id)
    )


def history(conn: Connection, task_id: str, limit: int | None = None) -> list[RunInfo]:
    """Every run of a task id, newest first."""
    query = _runs().where(RUNS.c.task_id == task_id)
    query = query.order_by(RUNS.c.started.desc(), RUNS.c.build_id).limit(limit)
    return [RunInfo.from_row(row) for row in conn.execute(query)]


def builds(conn: Connection, limit: int | None = 20) -> list[BuildInfo]:
    """The newest builds first, each with its runs counted by outcome."""
    rows = list(conn.execute(select(BUILDS).order_by(BUILDS.c.started.desc()).limit(limit)))
    counts = _counts(conn, [row.id for row in rows])
    return [BuildInfo.from_row(row, counts.get(row.id, {})) for row in rows]


def build(conn: Connection, build_id: str) -> BuildInfo:
    """One build with its installed packages and every run, in the order they started."""
    query = (
        select(BUILDS, ENVIRONMENTS.c.packages)
        .outerjoin(ENVIRONMENTS, ENVIRONMENTS.c.digest == BUILDS.c.env_digest)
        .where(BUILDS.c.id == build_id)
    )
    row = conn.execute(query).one()
    runs = _runs().where(RUNS.c.build_id == build_id).order_by(RUNS.c.started, RUNS.c.task_id)
    found = tuple(RunInfo.from_row(r) for r in conn.execute(runs))
    return BuildInfo.from_row(row, _counts(conn, [build_id]).get(build_id, {}), found)


def _counts(conn: Connection, build_ids: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for chunk in chunks(build_ids):
        query = (
            select(RUNS.c.build_id, RUNS.c.outcome, func.count())
            .where(RUNS.c.build_id.in_(chunk))
            .group_by(RUNS.c.build_id, RUNS.c.outcome)
        )
        for build_id, outcome, count in conn.execute(query):
            counts.setdefault(build_id, {})[outcome] = count
    return counts


def producers(conn: Connection, digest: str) -> list[Producer]:
    """Every task recorded with this output digest, with the runs that wrote it."""
    query = (
        select(OUTPUTS, TASKS.c.namespace, TASKS.c.name)
        .join(TASKS, TASKS.c.id == OUTPUTS.c.task_id)
        .where(OUTPUTS.c.digest == digest)
        .order_by(OUTPUTS.c.created.desc(), OUTPUTS.c.task_id)
    )
    outputs = list(conn.execute(query))
    runs = _runs().where(RUNS.c.digest == digest, RUNS.c.outcome == "computed")
    by_task: dict[str, list[RunInfo]] = {}
    for row in conn.execute(runs.order_by(RUNS.c.started.desc())):
        by_task.setdefault(row.task_id, []).append(RunInfo.from_row(row))
    return [
        Producer(
            task_id=row.task_id,
            namespace=row.namespace,
            name=row.name,
            output=OutputInfo.from_row(row),
            runs=tuple(by_task.get(row.task_id, ())),
        )
        for row in outputs
    ]


def outputs(conn: Connection, task_ids: Sequence[str]) -> dict[str, OutputInfo]:
    """The newest recorded output of each of these task ids that has one (batched)."""
    found: dict[str, OutputInfo] = {}
    columns = [OUTPUTS.c[name] for name in OutputInfo.__dataclass_fields__]
    for chunk in chunks(list(dict.fromkeys(task_ids))):
        query = select(*columns).where(OUTPUTS.c.task_id.in_(chunk)).order_by(OUTPUTS.c.created)
        for row in conn.execute(query):  # positional: 10,000 rows add up
            task_id, digest, serializer, raw, stored, created, build_id, store, used = row
            found[task_id] = OutputInfo(  # the newest comes last and wins
                task_id, digest, serializer, raw, stored, _at(created), build_id, store, when(used)
            )
    return found


def _at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)


def latest_output(conn: Connection, task_id: str) -> OutputInfo | None:
    """The newest recorded output of one task id."""
    return outputs(conn, [task_id]).get(task_id)
