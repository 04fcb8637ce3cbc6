"""What only a registry on a database server has: an address that may be down, a password."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from postgres import PostgresServer, free_port

import stardag as sd
from stardag.registry import _db

sd.auto_namespace(__name__)

pytestmark = pytest.mark.postgresql_only
RAN: list[int] = []


@sd.task
def noted(value: int) -> int:
    RAN.append(value)
    return value


def test_an_unreachable_server_fails_the_build_naming_the_url_without_its_password() -> None:
    """Nothing listening at the URL: RegistryUnreachableError before any task runs, no password."""
    url = f"postgresql+psycopg://alice:s3cr3t-pw@127.0.0.1:{free_port()}/team"
    RAN.clear()
    with pytest.raises(sd.RegistryUnreachableError) as caught:
        sd.build(noted(value=1), registry=url)
    message = str(caught.value)
    assert "s3cr3t-pw" not in message and "s3cr3t-pw" not in repr(caught.value.url)
    assert "alice:***@127.0.0.1" in message and "/team" in message
    assert RAN == []
    assert not noted(value=1).complete()


def test_the_generated_ddl_creates_the_registry(postgres: PostgresServer) -> None:
    """schema/postgresql/registry.sql runs on PostgreSQL and creates every table."""
    import psycopg

    url = postgres.fresh_url()
    schema = url.rsplit("%3D", 1)[1]
    ddl = (Path(__file__).parents[2] / "schema" / "postgresql" / "registry.sql").read_text()
    with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}".encode())
        conn.execute(ddl.encode())
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        ).fetchall()
    tables = {name for (name,) in rows}
    assert {"tasks", "edges", "outputs", "builds", "runs", "claims", "pins"} <= tables
    opened = sd.registry.Registry(url)  # takes the tables as a new registry and stamps it
    opened.close()


SERVER: list[PostgresServer] = []


@sd.task
def step(k: int, prev: sd.Depends[int] | None = None) -> int:
    """Step 3 of a chain takes the session's server down (and, unless told, up again)."""
    if k == 3:
        SERVER[0].stop()
        if not STAY_DOWN:
            time.sleep(0.5)
            SERVER[0].start()
    return k + (prev or 0)


STAY_DOWN: list[bool] = []


def _chain(n: int) -> sd.Task[int]:
    task = step(k=0)
    for k in range(1, n):
        task = step(k=k, prev=task)
    return task


def test_a_server_restarted_mid_build_loses_no_record(
    postgres: PostgresServer, postgres_url: str
) -> None:
    """The server restarts while a task runs: the build finishes and records every run."""
    SERVER[:] = [postgres]
    STAY_DOWN.clear()
    top = _chain(6)
    summary = sd.build(top, registry=postgres_url)
    assert summary.ran == 6
    graph = sd.registry.lineage(top, registry=postgres_url)
    assert len(graph) == 6 and all(node.digest is not None for node in graph)
    runs = sd.registry.builds(registry=postgres_url)[0]
    assert runs.status == "succeeded"


def test_a_server_gone_at_the_end_says_what_was_not_recorded(
    postgres: PostgresServer, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stays down: every task still runs, and the error lists the unrecorded runs."""
    monkeypatch.setattr(_db, "LOCK_RETRIES", 2)
    SERVER[:] = [postgres]
    STAY_DOWN[:] = [True]
    top = _chain(5)
    try:
        with pytest.raises(
            sd.RegistryUnreachableError, match=r"runs of build \w+ were not recorded"
        ):
            sd.build(top, registry=postgres_url)
    finally:
        postgres.start()
    assert top.load() == 10  # every output is in the store
    sd.registry.reindex(registry=postgres_url)
    assert len(sd.registry.lineage(top, registry=postgres_url)) == 5
