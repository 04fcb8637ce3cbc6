"""The registry's schema history: each step upgrades a registry by one version.

Steps are frozen SQL, never generated from the current models: a registry made
by schema N must upgrade the same way forever. Applied in order, inside one
write transaction, each stamped in `schema_version`. A test checks that running
every step from nothing gives exactly the tables the models create, on SQLite
and on PostgreSQL.

One definition serves both databases: the statements are portable SQL, except
for `{bigint}`, a byte count's type (INTEGER in SQLite, whose integers already
hold 64 bits; BIGINT in PostgreSQL), `{without_rowid}` (a table SQLite keeps in
its primary key's order), and statements wrapped in `On`, which one database
alone runs (triggers). `scripts/gen_schema.py` writes each step
as it runs on each: `schema/migrations/` (SQLite) and
`schema/postgresql/migrations/`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class On:
    """A statement that only one database runs, as written (triggers differ in syntax)."""

    dialect: str
    statement: str


@dataclass(frozen=True)
class Migration:
    """One schema step: the version it brings a registry to, and its statements."""

    version: int
    name: str
    statements: tuple[str | On, ...]

    def statements_for(self, dialect: str) -> tuple[str, ...]:
        """The statements as they run on `dialect` ("sqlite" or "postgresql")."""
        types = TYPES.get(dialect, TYPES["sqlite"])
        return tuple(
            statement.format_map(types) if isinstance(statement, str) else statement.statement
            for statement in self.statements
            if isinstance(statement, str) or statement.dialect == dialect
        )


TYPES = {
    "sqlite": {"bigint": "INTEGER", "without_rowid": " WITHOUT ROWID"},
    "postgresql": {"bigint": "BIGINT", "without_rowid": ""},
}


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
    Migration(
        6,
        "lineage_keys",
        (
            """
            CREATE TABLE task_keys (
                key {bigint} NOT NULL,
                id VARCHAR NOT NULL,
                PRIMARY KEY (key),
                UNIQUE (id)
            )
            """,
            """
            CREATE TABLE links (
                task_key {bigint} NOT NULL,
                dep_key {bigint} NOT NULL,
                kind VARCHAR NOT NULL,
                PRIMARY KEY (task_key, dep_key, kind)
            ){without_rowid}
            """,
            """
            CREATE INDEX ix_links_dep_key ON links (dep_key)
            """,
            On(
                "postgresql",
                """
                CREATE SEQUENCE task_keys_key_seq OWNED BY task_keys.key
                """,
            ),
            On(
                "postgresql",
                """
                ALTER TABLE task_keys ALTER COLUMN key SET DEFAULT nextval('task_keys_key_seq')
                """,
            ),
            """
            INSERT INTO task_keys (id)
                SELECT task_id FROM edges UNION SELECT dep_id FROM edges ORDER BY 1
            """,
            """
            INSERT INTO links (task_key, dep_key, kind)
                SELECT a.key, b.key, e.kind FROM edges e
                JOIN task_keys a ON a.id = e.task_id JOIN task_keys b ON b.id = e.dep_id
            """,
            On(
                "sqlite",
                """CREATE TRIGGER edges_link AFTER INSERT ON edges BEGIN
    INSERT INTO task_keys (id) VALUES (NEW.task_id), (NEW.dep_id) ON CONFLICT DO NOTHING;
    INSERT INTO links (task_key, dep_key, kind)
        SELECT a.key, b.key, NEW.kind FROM task_keys a, task_keys b
        WHERE a.id = NEW.task_id AND b.id = NEW.dep_id;
END""",
            ),
            On(
                "sqlite",
                """CREATE TRIGGER edges_unlink AFTER DELETE ON edges BEGIN
    DELETE FROM links WHERE kind = OLD.kind
        AND task_key = (SELECT key FROM task_keys WHERE id = OLD.task_id)
        AND dep_key = (SELECT key FROM task_keys WHERE id = OLD.dep_id);
END""",
            ),
            On(
                "postgresql",
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
            ),
            On(
                "postgresql",
                """CREATE TRIGGER edges_link AFTER INSERT ON edges
    REFERENCING NEW TABLE AS new_edges
    FOR EACH STATEMENT EXECUTE FUNCTION stardag_edges_link()""",
            ),
            On(
                "postgresql",
                """CREATE FUNCTION stardag_edges_unlink() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM links l USING old_edges o, task_keys a, task_keys b
        WHERE a.id = o.task_id AND b.id = o.dep_id
        AND l.task_key = a.key AND l.dep_key = b.key AND l.kind = o.kind;
    RETURN NULL;
END $$""",
            ),
            On(
                "postgresql",
                """CREATE TRIGGER edges_unlink AFTER DELETE ON edges
    REFERENCING OLD TABLE AS old_edges
    FOR EACH STATEMENT EXECUTE FUNCTION stardag_edges_unlink()""",
            ),
        ),
    ),
)
