"""The registry: what was built, from what, by which code, where and when.

Every build records into it (see `sd.build(..., registry=...)`): a build row, a
run per task it touched, task specs, lineage edges and outputs. These functions
ask it questions and return plain objects. Each takes `registry=`: a
`Registry`, an SQLAlchemy URL, or None for the default registry
(`STARDAG_REGISTRY_URL`, else `$STARDAG_HOME/registry.db`).

```python
import stardag as sd

graph = sd.registry.lineage(task)          # upstream; direction="down" | "both"
print(graph)                               # a text tree; also .to_mermaid(), .to_dot()
for run in sd.registry.history(task):      # newest first
    print(run.outcome, run.digest, run.environment.git_commit)
print(sd.registry.explain(task))           # why it would run, what changed
```

Tasks may be named by the task itself, its id, a unique id prefix, or a blob
digest (meaning the tasks that produced those bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from stardag.task._base import BaseTask

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from stardag.registry._db import Registry, default_url
    from stardag.registry._db import open_registry as open_registry
    from stardag.registry._db import resolve as resolve
    from stardag.registry._explain import Difference, Explanation
    from stardag.registry._graph import LineageEdge, LineageGraph, LineageNode
    from stardag.registry._info import (
        BuildInfo,
        EnvironmentInfo,
        OutputInfo,
        Producer,
        RunInfo,
    )
    from stardag.registry._lineage import Direction
    from stardag.registry._pins import Pin, pin, pins, unpin
    from stardag.registry._reindex import ReindexReport
    from stardag.store._store import Store

# Names imported on first use: a build records through the standard library's sqlite3
# (`_lite`, a submodule: importing it runs this module) and must not pay for SQLAlchemy's
# import, nor for the dataclasses that queries return.
_LAZY = {
    "BuildInfo": "_info",
    "EnvironmentInfo": "_info",
    "OutputInfo": "_info",
    "Producer": "_info",
    "RunInfo": "_info",
    "LineageEdge": "_graph",
    "LineageGraph": "_graph",
    "LineageNode": "_graph",
    "Registry": "_db",
    "default_url": "_db",
    "open_registry": "_db",
    "resolve": "_db",
    "Difference": "_explain",
    "Explanation": "_explain",
    "Pin": "_pins",
    "pin": "_pins",
    "pins": "_pins",
    "unpin": "_pins",
    "ReindexReport": "_reindex",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "BuildInfo",
    "Difference",
    "EnvironmentInfo",
    "Explanation",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "OutputInfo",
    "Pin",
    "Producer",
    "Registry",
    "ReindexReport",
    "RunInfo",
    "build",
    "builds",
    "default_url",
    "explain",
    "history",
    "lineage",
    "open",
    "outputs",
    "pin",
    "pins",
    "producers",
    "reindex",
    "unpin",
]

RegistryRef: TypeAlias = "Registry | str | None"


def open(url: str | None = None) -> Registry:  # sd.registry.open, like io.open
    """The registry at an SQLAlchemy URL (default: `default_url()`), created if missing.

    Opening one made by an older schema upgrades it in place; one made by a newer
    schema raises `RegistrySchemaError` and is left untouched.
    """
    from stardag.registry._db import open_registry

    return open_registry(url)


def lineage(
    task: BaseTask | str | Sequence[BaseTask | str],
    direction: Direction = "up",
    depth: int | None = None,
    *,
    registry: RegistryRef = None,
) -> LineageGraph:
    """What `task` was made from ("up"), what used it ("down"), or both, to `depth` edges.

    `task` is a task, a task id or unique prefix, or a blob digest: then every
    task that produced those bytes is a root of the graph. A list of them gives
    one graph with a root for each.
    """
    from stardag.registry import _graph, _lineage, _lookup
    from stardag.registry._db import resolve

    opened = resolve(registry)
    refs = [task] if isinstance(task, (BaseTask, str)) else list(task)

    def query(conn: Connection) -> tuple[list[str], set[str], list[tuple[str, str, str]]]:
        starts = list(dict.fromkeys(i for ref in refs for i in _lookup.task_ids(conn, ref)))
        return starts, *_lineage.walk(conn, starts, direction, depth)

    starts, ids, edges = opened.read(query)
    graph = _graph.lazy(
        tuple(starts), direction, ids, edges, lambda: opened.read(lambda c: _lineage.nodes(c, ids))
    )
    if opened.in_memory:  # its database lives only as long as its connection
        graph.nodes  # noqa: B018  # read the nodes now
    return graph


def history(
    task: BaseTask | str, *, limit: int | None = None, registry: RegistryRef = None
) -> list[RunInfo]:
    """Every run of a task id, newest first: outcome, duration, environment, output digest.

    Audits of the task appear among them with outcome "audited" and their `verdict`.
    """
    from stardag.registry import _audits, _history, _lookup
    from stardag.registry._db import resolve

    opened = resolve(registry)
    task_id = opened.read(lambda conn: _lookup.task_id(conn, task))
    runs = opened.read(lambda conn: _history.history(conn, task_id, limit))
    audits = [_audit_entry(verdict, runs) for verdict in _audits.verdicts(task_id, opened)]
    merged = sorted([*runs, *audits], key=lambda run: run.started, reverse=True)
    return merged if limit is None else merged[:limit]


def _audit_entry(verdict: Any, runs: list[RunInfo]) -> RunInfo:
    """An audit (an `_audits.Verdict`) as a history entry (audits record no environment)."""
    from stardag.registry._info import EnvironmentInfo, RunInfo, when

    started = when(verdict.audited)
    assert started is not None
    unknown = EnvironmentInfo("?", "?", "?", "?", "?", None, None, None)
    return RunInfo(
        build_id="audit",
        task_id=verdict.task_id,
        namespace=runs[0].namespace if runs else "",
        name=runs[0].name if runs else "?",
        outcome="audited",
        started=started,
        ended=started,
        duration=None,
        digest=verdict.audit_digest,
        size_raw=None,
        fingerprint=None,
        error_type=None,
        error_message=verdict.error,
        traceback=None,
        environment=unknown,
        verdict=verdict.verdict,
        recorded_digest=verdict.recorded_digest,
    )


def builds(limit: int | None = 20, *, registry: RegistryRef = None) -> list[BuildInfo]:
    """The newest builds, each with its runs counted by outcome."""
    from stardag.registry import _history
    from stardag.registry._db import resolve

    return resolve(registry).read(lambda conn: _history.builds(conn, limit))


def build(build_id: str, *, registry: RegistryRef = None) -> BuildInfo:
    """One build (by id or unique prefix) with its runs and installed packages."""
    from stardag.registry import _history, _lookup
    from stardag.registry._db import resolve

    opened = resolve(registry)
    return opened.read(lambda conn: _history.build(conn, _lookup.build_id(conn, build_id)))


def producers(digest: str, *, registry: RegistryRef = None) -> list[Producer]:
    """Which tasks, and which of their runs, produced the bytes with this digest."""
    from stardag.registry import _history
    from stardag.registry._db import resolve

    return resolve(registry).read(lambda conn: _history.producers(conn, digest.strip().lower()))


def outputs(task_ids: Sequence[str], *, registry: RegistryRef = None) -> dict[str, OutputInfo]:
    """The newest recorded output of each task id that has one, in batched queries.

    A fast completeness hint for many tasks at once; the store stays the judge
    (a blob may have been deleted since it was recorded).
    """
    from stardag.registry import _history
    from stardag.registry._db import resolve

    return resolve(registry).read(lambda conn: _history.outputs(conn, task_ids))


def explain(task: BaseTask | str, *, registry: RegistryRef = None) -> Explanation:
    """Why `task` is complete or would run, and what differs from its nearest previous run."""
    from stardag.registry import _explain
    from stardag.registry._db import resolve

    return _explain.explain(resolve(registry), task)


def reindex(root: str | Store | None = None, *, registry: RegistryRef = None) -> ReindexReport:
    """Rebuild task, edge and output rows from the action records of a store root."""
    from stardag.registry import _reindex
    from stardag.registry._db import resolve

    return _reindex.reindex(resolve(registry), root)
