"""What a claim is, apart from how it is stored: its states, its holder, the answers.

Shared by the SQLAlchemy claims (`_claims`, any database) and the standard
library's sqlite3 ones (`_lite`), so both hand the claimer the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

HELD, RELEASED, FAILED = "held", "released", "failed"
CHUNK = 80  # rows per claiming statement: 11 bound values each, under SQLite's old limit of 999
MAX_ERROR = 4096


@dataclass(frozen=True)
class Holder:
    """Who holds claims: one build in one process on one host."""

    build_id: str
    host: str
    pid: int


@dataclass(frozen=True, order=True)
class Won:
    """A claim this builder won; `fresh` when nobody had ever claimed the task."""

    task_id: str
    fresh: bool


@dataclass(frozen=True)
class Seen:
    """Another builder's claim on a task, as a waiting builder polls it."""

    task_id: str
    build_id: str
    state: str
    expired: bool
    error: str | None
