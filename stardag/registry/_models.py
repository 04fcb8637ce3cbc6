"""The registry's tables, as SQLModel models: the single source of `schema/registry.sql`.

Times are seconds since the epoch (UTC) as floats, so ordering and durations
are plain arithmetic on every backend; JSON columns hold canonical JSON text.
A change here needs a new step in `_migrations.py` and `scripts/gen_schema.py`
run again (a test fails until both are done).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKeyConstraint, Index, Integer
from sqlmodel import Field, SQLModel

# Bump with every new migration step; a registry stamped higher is refused.
SCHEMA_VERSION = 5

# Byte counts: SQLite's INTEGER already holds 64 bits, PostgreSQL's needs BIGINT.
_BYTES = Integer().with_variant(BigInteger(), "postgresql")


def _bytes(nullable: bool) -> Any:
    """A byte-count column (a fresh Column per model field)."""
    return Field(default=None, sa_column=Column(_BYTES, nullable=nullable))


class SchemaVersionRow(SQLModel, table=True):
    """One row per schema step applied to this registry; the highest is its version."""

    __tablename__ = "schema_version"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    name: str
    applied_at: float
    stardag_version: str


class TaskRow(SQLModel, table=True):
    """A task id and the spec it hashes, with where its code lives."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_namespace_name", "namespace", "name"),)

    id: str = Field(primary_key=True)
    namespace: str
    name: str
    version: str
    spec: str  # canonical JSON of the spec the id hashes
    module: str | None = None  # where the class or function can be imported from
    qualname: str | None = None
    fingerprint: str | None = None  # of the normalised source, as last seen running
    first_seen: float


class EdgeRow(SQLModel, table=True):
    """Task -> dependency; `kind` is "static" (requires) or "dynamic" (yielded)."""

    __tablename__ = "edges"
    __table_args__ = (Index("ix_edges_dep_id", "dep_id"),)

    # No foreign keys: a store being reindexed may hold a record whose dependency's
    # record is gone, and lineage should still show the dangling id.
    task_id: str = Field(primary_key=True)
    dep_id: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)


class EnvironmentRow(SQLModel, table=True):
    """One distinct Python environment: interpreter, platform and installed packages."""

    __tablename__ = "environments"

    digest: str = Field(primary_key=True)
    python_version: str
    platform: str
    packages: str  # JSON list of "name==version", sorted
    created: float


class BuildRow(SQLModel, table=True):
    """One call of a build entry point: when, where, by whom, with what code."""

    __tablename__ = "builds"
    __table_args__ = (Index("ix_builds_started", "started"),)

    id: str = Field(primary_key=True)
    started: float
    ended: float | None = None
    status: str  # running, succeeded, failed
    roots: str  # JSON list of root task ids
    host: str
    username: str
    pid: int
    argv: str  # JSON list
    cwd: str
    python_version: str
    platform: str
    stardag_version: str
    env_digest: str | None = Field(default=None, foreign_key="environments.digest")
    git_commit: str | None = None
    git_dirty: bool | None = None
    labels: str | None = None  # JSON object: where else the build is known (build/_labels)


class RunRow(SQLModel, table=True):
    """What one build did with one task id: computed, cached, failed or skipped."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_task_id_started", "task_id", "started"),
        Index("ix_runs_digest", "digest"),
    )

    build_id: str = Field(primary_key=True, foreign_key="builds.id")
    task_id: str = Field(primary_key=True, foreign_key="tasks.id")
    outcome: str
    started: float
    ended: float | None = None
    duration: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    digest: str | None = None
    size_raw: int | None = _bytes(nullable=True)
    fingerprint: str | None = None  # of the code that ran
    executor: str | None = None  # where it ran: in_process, process, dask, ...
    executor_ref: str | None = None  # host:pid, or a worker's address and host:pid


class OutputRow(SQLModel, table=True):
    """A task id's output blob; a task rebuilt to other bytes gets a second row."""

    __tablename__ = "outputs"
    __table_args__ = (
        ForeignKeyConstraint(["build_id", "task_id"], ["runs.build_id", "runs.task_id"]),
        Index("ix_outputs_digest", "digest"),
        Index("ix_outputs_task_id_created", "task_id", "created"),
    )

    task_id: str = Field(primary_key=True, foreign_key="tasks.id")
    digest: str = Field(primary_key=True)
    serializer: str
    size_raw: int = _bytes(nullable=False)
    size_stored: int = _bytes(nullable=False)
    created: float
    build_id: str | None = None  # with task_id, the run that wrote it; None if reindexed
    store: str | None = None  # the store root URL it was written to
    last_used: float | None = None  # written or reused by a build (a cache hit): for gc


class ClaimRow(SQLModel, table=True):
    """Which build is computing a task id, until when (see `stardag.registry._claims`)."""

    __tablename__ = "claims"
    __table_args__ = (Index("ix_claims_build_id", "build_id"),)

    task_id: str = Field(primary_key=True)
    build_id: str
    host: str
    pid: int
    claimed: float
    expires: float  # renewed by the holder's heartbeat while held
    state: str  # held, released, failed
    generation: int  # 1 when first claimed; each takeover adds one
    error: str | None = None  # why the task failed (state failed)
