"""What registry queries return: plain frozen dataclasses, never ORM objects or sessions.

Times are timezone-aware UTC `datetime`s; durations are seconds.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from stardag.registry import _liveness


def when(seconds: float | None) -> datetime.datetime | None:
    """A stored time (seconds since the epoch) as an aware UTC datetime."""
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)


@dataclass(frozen=True)
class EnvironmentInfo:
    """Where and with what a build ran."""

    host: str
    username: str
    python_version: str
    platform: str
    stardag_version: str
    env_digest: str | None  # names the installed packages, stored once per environment
    git_commit: str | None
    git_dirty: bool | None
    packages: tuple[str, ...] | None = None  # "name==version"; None where not loaded

    @classmethod
    def from_row(cls, row: Any, packages: str | None = None) -> EnvironmentInfo:
        """From a row holding the build columns."""
        return cls(
            host=row.host,
            username=row.username,
            python_version=row.python_version,
            platform=row.platform,
            stardag_version=row.stardag_version,
            env_digest=row.env_digest,
            git_commit=row.git_commit,
            git_dirty=None if row.git_dirty is None else bool(row.git_dirty),
            packages=tuple(json.loads(packages)) if packages is not None else None,
        )


@dataclass(frozen=True)
class RunInfo:
    """What one build did with one task id."""

    build_id: str
    task_id: str
    namespace: str
    name: str
    outcome: str  # computed, cached, failed or skipped
    started: datetime.datetime
    ended: datetime.datetime | None
    duration: float | None
    digest: str | None  # the output it wrote (computed) or found (cached)
    size_raw: int | None
    fingerprint: str | None  # of the task's code as it ran
    error_type: str | None
    error_message: str | None
    traceback: str | None
    environment: EnvironmentInfo
    # Set on the entries `history()` adds for audits (outcome "audited"): the verdict
    # (reproduced, differs, failed, unrecorded) and the digest the audit compared with.
    verdict: str | None = None
    recorded_digest: str | None = None
    # Where it ran (computed and failed runs): the executor (in_process, process, dask,
    # ...) and its process: "host:pid", or a worker's address and host:pid.
    executor: str | None = None
    executor_ref: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> RunInfo:
        """From a row of runs joined with tasks and builds."""
        return cls(
            build_id=row.build_id,
            task_id=row.task_id,
            namespace=row.namespace or "",
            name=row.name or "?",
            outcome=row.outcome,
            started=_required(when(row.started)),
            ended=when(row.ended),
            duration=row.duration,
            digest=row.digest,
            size_raw=row.size_raw,
            fingerprint=row.fingerprint,
            error_type=row.error_type,
            error_message=row.error_message,
            traceback=row.traceback,
            environment=EnvironmentInfo.from_row(row),
            executor=row.executor,
            executor_ref=row.executor_ref,
        )


@dataclass(frozen=True)
class BuildInfo:
    """One build: when, how it ended, where it ran, and its runs counted by outcome."""

    id: str
    started: datetime.datetime
    ended: datetime.datetime | None
    status: str  # running, succeeded, failed, or abandoned (its process died while running)
    roots: tuple[str, ...]
    pid: int
    argv: tuple[str, ...]
    cwd: str
    environment: EnvironmentInfo
    counts: dict[str, int]  # outcome -> number of runs
    runs: tuple[RunInfo, ...] = ()  # filled by `sd.registry.build(id)` only
    labels: dict[str, str] = field(default_factory=dict)  # e.g. {"prefect.flow_run_id": ...}

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None while running."""
        return None if self.ended is None else (self.ended - self.started).total_seconds()

    @classmethod
    def from_row(
        cls, row: Any, counts: dict[str, int], runs: tuple[RunInfo, ...] = ()
    ) -> BuildInfo:
        """From a builds row (joined with its environment's packages when loaded)."""
        return cls(
            id=row.id,
            started=_required(when(row.started)),
            ended=when(row.ended),
            status=_liveness.status(row.status, row.host, row.pid, row.started),
            roots=tuple(json.loads(row.roots)),
            pid=row.pid,
            argv=tuple(json.loads(row.argv)),
            cwd=row.cwd,
            environment=EnvironmentInfo.from_row(row, getattr(row, "packages", None)),
            counts=counts,
            runs=runs,
            labels=json.loads(row.labels) if row.labels else {},
        )


@dataclass(frozen=True)
class OutputInfo:
    """A task id's output blob as recorded."""

    task_id: str
    digest: str
    serializer: str
    size_raw: int
    size_stored: int
    created: datetime.datetime
    build_id: str | None  # the build whose run wrote it; None if reindexed from a store
    store: str | None
    last_used: datetime.datetime | None

    @classmethod
    def from_row(cls, row: Any) -> OutputInfo:
        """From an outputs row."""
        return cls(
            task_id=row.task_id,
            digest=row.digest,
            serializer=row.serializer,
            size_raw=row.size_raw,
            size_stored=row.size_stored,
            created=_required(when(row.created)),
            build_id=row.build_id,
            store=row.store,
            last_used=when(row.last_used),
        )


@dataclass(frozen=True)
class Producer:
    """A task that produced a blob: its recorded output and the runs that wrote it."""

    task_id: str
    namespace: str
    name: str
    output: OutputInfo
    runs: tuple[RunInfo, ...]  # computed runs that wrote these bytes, newest first


def _required(value: datetime.datetime | None) -> datetime.datetime:
    if value is None:
        raise ValueError("a required time column is NULL")
    return value
