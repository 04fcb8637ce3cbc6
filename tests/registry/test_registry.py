"""`sd.registry`, the public module: imported on first use, with a sorted surface."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
from sqlalchemy import Connection

import stardag as sd


def test_import_stardag_leaves_sqlalchemy_unimported() -> None:
    """`import stardag` and `sd.registry` do not import SQLAlchemy or SQLModel (a build
    records without them); what queries the registry, such as `sd.registry.Registry`, does."""
    code = (
        "import sys, stardag as sd\n"
        "assert 'sqlalchemy' not in sys.modules and 'sqlmodel' not in sys.modules\n"
        "sd.registry.lineage\n"
        "assert 'sqlalchemy' not in sys.modules and 'sqlmodel' not in sys.modules\n"
        "sd.registry.Registry\n"
        "assert 'sqlalchemy' in sys.modules and 'sqlmodel' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_all_is_sorted_and_complete() -> None:
    """`sd.registry.__all__` is sorted and every name in it exists."""
    assert list(sd.registry.__all__) == sorted(sd.registry.__all__)
    assert all(getattr(sd.registry, name) is not None for name in sd.registry.__all__)


@pytest.mark.sqlite_only
def test_a_full_registry_fails_the_build_before_any_task_runs() -> None:
    """A registry with no room left raises RegistryUnwritableError and runs nothing."""
    registry = sd.registry.Registry("sqlite://")  # one connection: the PRAGMA sticks
    registry.write(_cap_size)
    with contextlib.suppress(sd.RegistryUnwritableError):
        for number in range(10_000):  # fill every page the cap allows
            registry.write(lambda conn, n=number: _junk_build(conn, n))
    task = _echo(value=1)
    with pytest.raises(sd.RegistryUnwritableError, match="full"):
        sd.build(task, registry=registry)
    assert not task.complete()
    registry.close()


def _cap_size(conn: Connection) -> None:
    pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")


def _junk_build(conn: Connection, number: int) -> None:
    values = (f"junk{number}", "x" * 200)
    conn.exec_driver_sql(
        "INSERT INTO builds (id, started, status, roots, host, username, pid, argv, cwd, "
        "python_version, platform, stardag_version) "
        "VALUES (?, 0, 'junk', '[]', '', '', 0, ?, '', '', '', '')",
        values,
    )


@sd.task
def _echo(value: int) -> int:
    return value
