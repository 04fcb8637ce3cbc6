"""The registry's tables, as SQLModel models: the single source of `schema/registry.sql`.

Times are seconds since the epoch (UTC) as floats, so ordering and durations
are plain arithmetic on every backend; JSON columns hold canonical JSON text.
A change here needs a new step in `_migrations.py` and `scripts/gen_schema.py`
run again (a test fails until both are done).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DDL, BigInteger, Column, ForeignKeyConstraint, Index, Integer, event
from sqlmodel import Field, SQLModel

# Bump with every new migration step; a registry stamped higher is refused.
SCHEMA_VERSION = 6

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


class TaskKeyRow(SQLModel, table=True):
    """A small integer for each task id an edge names: lineage walks these, not 64 hex digits.

    Filled by the database itself when an edge is inserted (`LINK_TRIGGERS`), so every
    writer of edges writes the same rows it always did.
    """

    __tablename__ = "task_keys"

    key: int | None = Field(
        default=None, sa_column=Column(_BYTES, primary_key=True, autoincrement=True)
    )
    id: str = Field(unique=True)


class LinkRow(SQLModel, table=True):
    """An edge by its ends' `task_keys`: exactly one row per `edges` row, kept so by triggers."""

    __tablename__ = "links"
    __table_args__ = (Index("ix_links_dep_key", "dep_key"), {"sqlite_with_rowid": False})

    task_key: int = Field(sa_column=Column(_BYTES, primary_key=True, autoincrement=False))
    dep_key: int = Field(sa_column=Column(_BYTES, primary_key=True, autoincrement=False))
    kind: str = Field(primary_key=True)


# The triggers that keep `task_keys` and `links` in step with `edges`, per database (a new
# registry gets them here; older ones from migration step 6, which must create the same).
LINK_TRIGGERS: dict[str, tuple[str, ...]] = {
    "sqlite": (
        """CREATE TRIGGER edges_link AFTER INSERT ON edges BEGIN
    INSERT INTO task_keys (id) VALUES (NEW.task_id), (NEW.dep_id) ON CONFLICT DO NOTHING;
    INSERT INTO links (task_key, dep_key, kind)
        SELECT a.key, b.key, NEW.kind FROM task_keys a, task_keys b
        WHERE a.id = NEW.task_id AND b.id = NEW.dep_id;
END""",
        """CREATE TRIGGER edges_unlink AFTER DELETE ON edges BEGIN
    DELETE FROM links WHERE kind = OLD.kind
        AND task_key = (SELECT key FROM task_keys WHERE id = OLD.task_id)
        AND dep_key = (SELECT key FROM task_keys WHERE id = OLD.dep_id);
END""",
    ),
    "postgresql": (
        """CREATE FUNCTION stardag_edges_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_keys (id)
        SELECT task_id FROM new_edges UNION SELECT dep_id FROM new_edges ORDER BY 1
        ON CONFLICT DO NOTHING;
    INSERT INTO links (task_key, dep_key, kind)
        SELECT a.key, b.key, n.kind FROM new_edges n
        JOIN task_keys a ON a.id = n.task_id JOIN task_keys b ON b.id = n.dep_id;
    RETURN NULL;
END $$""",
        """CREATE TRIGGER edges_link AFTER INSERT ON edges
    REFERENCING NEW TABLE AS new_edges
    FOR EACH STATEMENT EXECUTE FUNCTION stardag_edges_link()""",
        """CREATE FUNCTION stardag_edges_unlink() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM links l USING old_edges o, task_keys a, task_keys b
        WHERE a.id = o.task_id AND b.id = o.dep_id
        AND l.task_key = a.key AND l.dep_key = b.key AND l.kind = o.kind;
    RETURN NULL;
END $$""",
        """CREATE TRIGGER edges_unlink AFTER DELETE ON edges
    REFERENCING OLD TABLE AS old_edges
    FOR EACH STATEMENT EXECUTE FUNCTION stardag_edges_unlink()""",
    ),
}


def _create_link_triggers(dialect: str) -> None:
    """Create the triggers with the tables, or again over tables the DDL file made."""
    for statement in LINK_TRIGGERS[dialect]:
        for step in _idempotent(statement):
            ddl = DDL(step)  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
            event.listen(SQLModel.metadata, "after_create", ddl.execute_if(dialect=dialect))


def _idempotent(statement: str) -> list[str]:
    """`statement` as statements that may run where it already ran."""
    if statement.startswith("CREATE FUNCTION"):
        return ["CREATE OR REPLACE" + statement.removeprefix("CREATE")]
    if statement.startswith("CREATE TRIGGER") and " EXECUTE FUNCTION " in statement:
        name = statement.split()[2]  # PostgreSQL before 14 has no CREATE OR REPLACE TRIGGER
        return [f"DROP TRIGGER IF EXISTS {name} ON edges", statement]
    return ["CREATE TRIGGER IF NOT EXISTS" + statement.removeprefix("CREATE TRIGGER")]


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


for _dialect in LINK_TRIGGERS:
    _create_link_triggers(_dialect)
