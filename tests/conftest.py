"""Shared fixtures: every test runs against its own Stardag home (store and registry)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from open_registries import close_opened_since, opened_urls


@pytest.fixture(autouse=True)
def stardag_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point STARDAG_HOME at a fresh directory and clear any configured roots; at the end,
    close every registry the test opened (its files and connections)."""
    for name in list(os.environ):
        if name.startswith(("STARDAG_TARGET_ROOTS", "STARDAG_REGISTRY_URL")):
            monkeypatch.delenv(name)
    home = tmp_path / "stardag-home"
    monkeypatch.setenv("STARDAG_HOME", str(home))
    kept = opened_urls()
    yield home
    close_opened_since(kept)


# -- S3: a real S3-compatible server (moto) on 127.0.0.1, started once per test session --

S3_BUCKET = "stardag-test"


@pytest.fixture(scope="session")
def s3_options() -> Iterator[dict[str, object]]:
    """Storage options of a moto S3 server on 127.0.0.1, with one bucket made."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options: dict[str, object] = {
        "endpoint_url": f"http://{host}:{port}",
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    boto3.client(
        "s3",
        endpoint_url=options["endpoint_url"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=S3_BUCKET)
    yield options
    server.stop()


@pytest.fixture
def s3_url() -> str:
    """A fresh, empty root in the test bucket."""
    import uuid

    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex}"


# -- PostgreSQL: a real server on 127.0.0.1 (tests/support/postgres.py), one per session --


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A throwaway PostgreSQL server, started on first use and removed at the end."""
    from postgres import PostgresServer

    server = PostgresServer()
    yield server
    server.destroy()


@pytest.fixture
def postgres_url(postgres: object) -> str:
    """The SQLAlchemy URL of a fresh, empty registry (a schema of its own) on that server."""
    from postgres import PostgresServer

    assert isinstance(postgres, PostgresServer)
    return postgres.fresh_url()


# -- Prefect: its temporary local server on 127.0.0.1, started once per test session --
# Prefect reads these when it is first imported (by a test or a doc block), so set them
# now: telemetry off (DO_NOT_TRACK for the client, ANALYTICS_ENABLED for the server), no
# UI, warnings only, and a home of its own that goes away with the session.
_PREFECT_HOME = tempfile.mkdtemp(prefix="stardag-prefect-home-")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)
os.environ.update(
    PREFECT_HOME=_PREFECT_HOME,
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    DO_NOT_TRACK="1",
    PREFECT_LOGGING_LEVEL="WARNING",
    PREFECT_UI_ENABLED="false",
    PREFECT_SERVER_UI_ENABLED="false",
)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """Prefect's temporary server (its own test harness) on 127.0.0.1; yields the API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        url = PREFECT_API_URL.value()
        assert url and url.startswith("http://127.0.0.1:"), url
        yield url
