"""The registry's schema history: each step upgrades a registry by one version.

Steps are frozen SQL, never generated from the current models: a registry made
by schema N must upgrade the same way forever. Applied in order, inside one
write transaction, each stamped in `schema_version`. A test checks that running
every step from nothing gives exactly the tables the models create, on SQLite
and on PostgreSQL.

One definition serves both databases: the statements are portable SQL, except
for `{bigint}`, a byte count's type (INTEGER in SQLite, whose integers already
hold 64 bits; BIGINT in PostgreSQL). `scripts/gen_schema.py` writes each step
as it runs on each: `schema/migrations/` (SQLite) and
`schema/postgresql/migrations/`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step: the version it brings a registry to, and its statements."""

    version: int
    name: str
    statements: tuple[str, ...]

    def statements_for(self, dialect: str) -> tuple[str, ...]:
        """The statements as they run on `dialect` ("sqlite" or "postgresql")."""
        types = TYPES.get(dialect, TYPES["sqlite"])
        return tuple(statement.format_map(types) for statement in self.statements)


TYPES = {"sqlite": {"bigint": "INTEGER"}, "postgresql": {"bigint": "BIGINT"}}


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        (
            """
            CREATE TABLE edges (
                task_id VARCHAR NOT NULL,
                dep_id VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                PRIMARY KEY (task_id, dep_id, kind)
            )
            """,
            """
            CREATE INDEX ix_edges_dep_id ON edges (dep_id)
            """,
            """
            CREATE TABLE environments (
                digest VARCHAR NOT NULL,
                python_version VARCHAR NOT NULL,
                platform VARCHAR NOT NULL,
                packages VARCHAR NOT NULL,
                created FLOAT NOT NULL,
                PRIMARY KEY (digest)
            )
            """,
            """
            CREATE TABLE schema_version (
                version INTEGER NOT NULL,
                name VARCHAR NOT NULL,
                applied_at FLOAT NOT NULL,
                stardag_version VARCHAR NOT NULL,
                PRIMARY KEY (version)
            )
            """,
            """
            CREATE TABLE tasks (
                id VARCHAR NOT NULL,
                namespace VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                version VARCHAR NOT NULL,
                spec VARCHAR NOT NULL,
                module VARCHAR,
                qualname VARCHAR,
                fingerprint VARCHAR,
                first_seen FLOAT NOT NULL,
                PRIMARY KEY (id)
            )
            """,
            """
            CREATE INDEX ix_tasks_namespace_name ON tasks (namespace, name)
            """,
            """
            CREATE TABLE builds (
                id VARCHAR NOT NULL,
                started FLOAT NOT NULL,
                ended FLOAT,
                status VARCHAR NOT NULL,
                roots VARCHAR NOT NULL,
                host VARCHAR NOT NULL,
                username VARCHAR NOT NULL,
                pid INTEGER NOT NULL,
                argv VARCHAR NOT NULL,
                cwd VARCHAR NOT NULL,
                python_version VARCHAR NOT NULL,
                platform VARCHAR NOT NULL,
                stardag_version VARCHAR NOT NULL,
                env_digest VARCHAR,
                git_commit VARCHAR,
                git_dirty BOOLEAN,
                PRIMARY KEY (id),
                FOREIGN KEY(env_digest) REFERENCES environments (digest)
            )
            """,
            """
            CREATE INDEX ix_builds_started ON builds (started)
            """,
            """
            CREATE TABLE runs (
                build_id VARCHAR NOT NULL,
                task_id VARCHAR NOT NULL,
                outcome VARCHAR NOT NULL,
                started FLOAT NOT NULL,
                ended FLOAT,
                duration FLOAT,
                error_type VARCHAR,
                error_message VARCHAR,
                traceback VARCHAR,
                digest VARCHAR,
                size_raw {bigint},
                fingerprint VARCHAR,
                PRIMARY KEY (build_id, task_id),
                FOREIGN KEY(build_id) REFERENCES builds (id),
                FOREIGN KEY(task_id) REFERENCES tasks (id)
            )
            """,
            """
            CREATE INDEX ix_runs_digest ON runs (digest)
            """,
            """
            CREATE INDEX ix_runs_task_id_started ON runs (task_id, started)
            """,
            """
            CREATE TABLE outputs (
                task_id VARCHAR NOT NULL,
                digest VARCHAR NOT NULL,
                serializer VARCHAR NOT NULL,
                size_raw {bigint} NOT NULL,
                size_stored {bigint} NOT NULL,
                created FLOAT NOT NULL,
                build_id VARCHAR,
                store VARCHAR,
                PRIMARY KEY (task_id, digest),
                FOREIGN KEY(build_id, task_id) REFERENCES runs (build_id, task_id),
                FOREIGN KEY(task_id) REFERENCES tasks (id)
            )
            """,
            """
            CREATE INDEX ix_outputs_digest ON outputs (digest)
            """,
            """
            CREATE INDEX ix_outputs_task_id_created ON outputs (task_id, created)
            """,
        ),
    ),
    Migration(
        2,
        "output_last_used",
        (
            """
            ALTER TABLE outputs ADD COLUMN last_used FLOAT
            """,
            """
            UPDATE outputs SET last_used = created
            """,
        ),
    ),
    Migration(
        3,
        "claims",
        (
            """
            CREATE TABLE claims (
                task_id VARCHAR NOT NULL,
                build_id VARCHAR NOT NULL,
                host VARCHAR NOT NULL,
                pid INTEGER NOT NULL,
                claimed FLOAT NOT NULL,
                expires FLOAT NOT NULL,
                state VARCHAR NOT NULL,
                generation INTEGER NOT NULL,
                error VARCHAR,
                PRIMARY KEY (task_id)
            )
            """,
            """
            CREATE INDEX ix_claims_build_id ON claims (build_id)
            """,
        ),
    ),
    Migration(
        4,
        "build_labels",
        (
            """
            ALTER TABLE builds ADD COLUMN labels VARCHAR
            """,
        ),
    ),
    Migration(
        5,
        "run_executor",
        (
            """
            ALTER TABLE runs ADD COLUMN executor VARCHAR
            """,
            """
            ALTER TABLE runs ADD COLUMN executor_ref VARCHAR
            """,
        ),
    ),
)
