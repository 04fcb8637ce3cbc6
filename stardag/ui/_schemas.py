"""What the JSON API answers, as Pydantic models: the source of its OpenAPI schema.

Each model is built from the registry's plain objects by a `of` class method, so
the API's shape is stated once, here, and the pages read nothing else. Times are
ISO 8601 UTC; sizes are bytes; durations are seconds.
"""

from __future__ import annotations

import datetime
from typing import Any

from pydantic import BaseModel

from stardag.registry import BuildInfo, LineageNode, RunInfo
from stardag.ui._queries import TaskRow


class Environment(BaseModel):
    """Where and with what a build ran."""

    host: str
    username: str
    python_version: str
    platform: str
    stardag_version: str
    git_commit: str | None
    git_dirty: bool | None
    packages: list[str] | None = None


class Build(BaseModel):
    """A build: when, how it ended, where, and its runs counted by outcome."""

    id: str
    started: datetime.datetime
    ended: datetime.datetime | None
    duration: float | None
    status: str
    alive: bool | None  # for a running build: whether its process still runs (None: unknown)
    roots: list[str]
    pid: int
    argv: list[str]
    cwd: str
    environment: Environment
    counts: dict[str, int]
    total: int

    @classmethod
    def of(cls, info: BuildInfo, alive: bool | None, packages: bool = False) -> Build:
        """From the registry's `BuildInfo`."""
        env = info.environment
        return cls(
            id=info.id,
            started=info.started,
            ended=info.ended,
            duration=info.duration,
            status=info.status,
            alive=alive,
            roots=list(info.roots),
            pid=info.pid,
            argv=list(info.argv),
            cwd=info.cwd,
            environment=Environment(
                host=env.host,
                username=env.username,
                python_version=env.python_version,
                platform=env.platform,
                stardag_version=env.stardag_version,
                git_commit=env.git_commit,
                git_dirty=env.git_dirty,
                packages=list(env.packages) if packages and env.packages is not None else None,
            ),
            counts=dict(info.counts),
            total=sum(info.counts.values()),
        )


class BuildsPage(BaseModel):
    """A page of builds, newest first; `next` is the cursor of the following page."""

    builds: list[Build]
    next: str | None


class Run(BaseModel):
    """What one build did with one task, or (outcome "audited") one audit of it."""

    build_id: str
    task_id: str
    label: str
    outcome: str
    started: datetime.datetime
    ended: datetime.datetime | None
    duration: float | None
    digest: str | None
    size_raw: int | None
    fingerprint: str | None
    error_type: str | None
    error_message: str | None
    traceback: str | None
    verdict: str | None
    recorded_digest: str | None


def run_data(run: RunInfo) -> dict[str, Any]:
    """A `Run` as plain data, from the registry's `RunInfo` (lists of runs are long)."""
    return {
        "build_id": run.build_id,
        "task_id": run.task_id,
        "label": f"{run.namespace}.{run.name}" if run.namespace else run.name,
        "outcome": run.outcome,
        "started": run.started,
        "ended": run.ended,
        "duration": run.duration,
        "digest": run.digest,
        "size_raw": run.size_raw,
        "fingerprint": run.fingerprint,
        "error_type": run.error_type,
        "error_message": run.error_message,
        "traceback": run.traceback,
        "verdict": run.verdict,
        "recorded_digest": run.recorded_digest,
    }


class RunsPage(BaseModel):
    """A page of a build's runs in the order they started."""

    runs: list[Run]
    offset: int
    next_offset: int | None


class Output(BaseModel):
    """A task's newest recorded output."""

    digest: str
    serializer: str | None
    size_raw: int | None
    size_stored: int | None
    created: datetime.datetime | None
    build_id: str | None


class Code(BaseModel):
    """A task's code: where it lives and its fingerprints, then and now."""

    module: str | None
    qualname: str | None
    built: str | None  # fingerprint of the code that produced the output
    last_seen: str | None  # fingerprint the registry saw last (any run)
    now: str | None  # fingerprint of the source on disk now, if found
    path: str | None  # the source file it was read from
    changed: bool | None  # the code differs from the code that built the output


class Task(BaseModel):
    """Everything the task page shows above its runs and lineage."""

    id: str
    namespace: str
    name: str
    label: str
    version: str
    params: dict[str, Any]
    first_seen: datetime.datetime | None
    code: Code
    output: Output | None
    complete: bool | None  # the store holds its record and output (None: no store has it)
    store: str | None


class Preview(BaseModel):
    """A capped look at an output (see `stardag.ui._preview`)."""

    kind: str
    serializer: str
    size_raw: int
    text: str | None
    columns: list[str]
    rows: list[list[str]]
    total_rows: int | None
    shape: list[int] | None
    dtype: str | None
    truncated: bool
    verified: bool
    note: str | None


class Node(BaseModel):
    """A task in a lineage graph."""

    id: str
    label: str
    version: str
    known: bool
    digest: str | None
    serializer: str | None
    size_raw: int | None
    build_id: str | None


def node_data(node: LineageNode) -> dict[str, Any]:
    """A `Node` as plain data, from the registry's `LineageNode` (graphs are big)."""
    return {
        "id": node.task_id,
        "label": node.label,
        "version": node.version,
        "known": node.known,
        "digest": node.digest,
        "serializer": node.serializer,
        "size_raw": node.size_raw,
        "build_id": node.build_id,
    }


class Edge(BaseModel):
    """`task_id` depends on `dep_id` ("static": requires; "dynamic": yielded)."""

    task_id: str
    dep_id: str
    kind: str


class Lineage(BaseModel):
    """The tasks around `roots` and the edges among them; `truncated` past the node cap."""

    roots: list[str]
    direction: str
    nodes: list[Node]
    edges: list[Edge]
    truncated: bool


class TaskBrief(BaseModel):
    """A task in a list: id, label, version, when first seen."""

    id: str
    label: str
    version: str
    first_seen: datetime.datetime | None

    @classmethod
    def of(cls, row: TaskRow) -> TaskBrief:
        """From a tasks row."""
        label = f"{row.namespace}.{row.name}" if row.namespace else row.name
        seen = datetime.datetime.fromtimestamp(row.first_seen, tz=datetime.timezone.utc)
        return cls(id=row.id, label=label, version=row.version, first_seen=seen)


class DigestHit(BaseModel):
    """An output digest and the tasks that produced it."""

    digest: str
    producers: list[TaskBrief]


class Search(BaseModel):
    """What a search found: tasks by name or id prefix, outputs by digest, builds by id.

    `families` are the task families (`namespace.name`) the text names, with how many
    tasks each has; `tasks` holds a few of each family, and the id matches.
    """

    query: str
    families: dict[str, int]
    tasks: list[TaskBrief]
    digests: list[DigestHit]
    builds: list[str]


class BlobOutput(BaseModel):
    """An output by digest: who produced it, and a preview of its bytes."""

    digest: str
    producers: list[TaskBrief]
    store: str | None
    preview: Preview | None


class StoreStats(BaseModel):
    """The registry's totals of recorded outputs, and the configured stores."""

    registry: str
    roots: dict[str, str]
    outputs: int
    blobs: int
    bytes_raw: int
    bytes_unique: int
    bytes_stored: int
    compression_ratio: float | None  # uncompressed / stored bytes of the distinct blobs
    dedup_ratio: float | None  # bytes of every task's output / bytes of the distinct blobs


class GcFamily(BaseModel):
    """A task family gc would free, with how many records and blobs and their bytes."""

    family: str
    count: int
    bytes: int


class GcPreview(BaseModel):
    """`stardag gc`'s dry run under the default policy (computed in the background)."""

    state: str  # idle, running, ready, failed
    started: datetime.datetime | None
    finished: datetime.datetime | None
    error: str | None
    store: str | None = None
    policy: str | None = None
    refused: str | None = None  # why gc would refuse (no roots configured)
    records: int | None = None
    blobs: int | None = None
    bytes: int | None = None
    by_family: list[GcFamily] = []
    kept: dict[str, int] = {}
    blobs_on_disk: int | None = None
    bytes_on_disk: int | None = None
