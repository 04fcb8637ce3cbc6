"""What only a registry on a database server has: an address that may be down, a password."""

from __future__ import annotations

from pathlib import Path

import pytest
from postgres import PostgresServer, free_port

import stardag as sd

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
