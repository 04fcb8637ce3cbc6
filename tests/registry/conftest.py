"""The registry contract: every test in this directory runs on SQLite and on PostgreSQL.

The default registry (`STARDAG_REGISTRY_URL`) of each test is a fresh SQLite file
under its Stardag home, or a fresh schema on the session's PostgreSQL server. A
test about something only SQLite has (its file, its locks, its journal) is marked
`sqlite_only`, and a test's in-memory SQLite variant is SQLite's alone: neither is
collected for PostgreSQL at all (nothing is skipped). A test of what only a server
has (an address, a password) is `postgresql_only`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: a test of SQLite itself")
    config.addinivalue_line("markers", "postgresql_only: a test of a database server")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("registry_backend") if callspec else None
        in_memory = callspec is not None and callspec.params.get("registry") == "memory"
        if (backend == "postgresql" and (in_memory or item.get_closest_marker("sqlite_only"))) or (
            backend == "sqlite" and item.get_closest_marker("postgresql_only")
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True, params=BACKENDS)
def registry_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which database this run of the test records into (its default registry)."""
    backend: str = request.param
    if backend == "postgresql" and not request.node.get_closest_marker("sqlite_only"):
        monkeypatch.setenv("STARDAG_REGISTRY_URL", request.getfixturevalue("postgres_url"))
    return backend


@pytest.fixture
def registry_url(registry_backend: str, tmp_path: Path) -> str:
    """A URL of a fresh registry on this run's backend (the default registry on PostgreSQL)."""
    if registry_backend == "postgresql":
        return os.environ["STARDAG_REGISTRY_URL"]
    (tmp_path / "contract").mkdir(exist_ok=True)
    return f"sqlite:///{tmp_path / 'contract' / 'registry.db'}"
