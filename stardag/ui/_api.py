"""The read-only JSON API under `/api/v1/`: what every page of the dashboard reads.

Each endpoint asks the registry through `sd.registry`'s query functions (or the
bounded queries of `_queries`) and the stores through `Store`, and answers one of
the models of `_schemas`, which FastAPI turns into the OpenAPI schema served at
`/api/v1/openapi.json`. Invariants: only GET exists, so nothing here can change the
registry or a store; every list is capped; a task, build or digest named in a path
must be lowercase hex before it reaches a query or a store path, so no name can
reach outside the store; Stardag's errors become 400 (malformed), 404 (unknown) or
409 (ambiguous) with the library's own one-line message.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from collections import deque
from dataclasses import asdict, dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import Connection

import stardag.registry
from stardag import _hashing
from stardag._errors import (
    AmbiguousTaskIdError,
    InvalidKeyError,
    StardagError,
    TaskNotFoundError,
    TaskReferenceError,
)
from stardag.registry import BuildInfo, LineageGraph, Registry, _lookup
from stardag.store._record import ActionRecord
from stardag.store._store import Store
from stardag.ui import _code, _preview, _queries, _schemas
from stardag.ui._gcview import GcPreviewer

MAX_NODES = 3000  # a lineage larger than this is cut, nearest the roots kept
SEARCH_LIMIT = 50
router = APIRouter(prefix="/api/v1")


@dataclass
class Context:
    """What the API reads: one registry, the configured stores, and the gc preview."""

    registry: Registry
    roots: dict[str, str]  # root key -> URL, the default first
    stores: list[Store]
    gc: GcPreviewer
    totals: _queries.TotalsCache

    def read_record(self, task_id: str) -> tuple[Store | None, ActionRecord | None]:
        """The first store holding an action record of the task, and that record."""
        for store in self.stores:
            record = store.get_record(task_id)
            if record is not None:
                return store, record
        return None, None


def _context(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


def _fail(exc: StardagError) -> HTTPException:
    if isinstance(exc, TaskNotFoundError):
        return HTTPException(404, str(exc))
    if isinstance(exc, AmbiguousTaskIdError):
        return HTTPException(409, str(exc))
    if isinstance(exc, (TaskReferenceError, InvalidKeyError)):
        return HTTPException(400, str(exc))
    return HTTPException(500, str(exc))


def _hex(text: str, what: str, exact: bool = False) -> str:
    value = text.strip().lower()
    ok = _hashing.is_hex_key(value) if exact else _is_hex(value)
    if not ok:
        size = "64" if exact else "1 to 64"
        raise HTTPException(400, f"{text!r} is not a {what} ({size} lowercase hex characters)")
    return value


def _is_hex(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c in "0123456789abcdef" for c in text)


# -- builds ------------------------------------------------------------------------------------
@router.get("/builds", response_model=_schemas.BuildsPage)
def builds(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=_queries.MAX_PAGE)] = 50,
    before: Annotated[str | None, Query(description="cursor from the previous page")] = None,
) -> _schemas.BuildsPage:
    """Builds, newest first, a page at a time."""
    context = _context(request)
    cursor = _cursor(before) if before else None
    found = context.registry.read(lambda conn: _queries.builds_page(conn, limit + 1, cursor))
    page, more = found[:limit], len(found) > limit
    following = page[-1][1] if more else None
    return _schemas.BuildsPage(builds=[_build(b) for b, _ in page], next=following)


def _cursor(text: str) -> tuple[float, str]:
    started, _, build_id = text.partition(":")
    try:
        return float(started), _hex(build_id, "build id")
    except ValueError:
        raise HTTPException(400, f"{text!r} is not a page cursor") from None


def _build(info: BuildInfo, packages: bool = False) -> _schemas.Build:
    return _schemas.Build.of(info, _alive(info), packages)


def _alive(info: BuildInfo) -> bool | None:
    """Whether a running build's process still runs: known on this host only."""
    if info.status != "running":
        return None
    if info.environment.host != socket.gethostname():
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by another user
        return True
    return True


@router.get("/builds/{build_id}", response_model=_schemas.Build)
def build(request: Request, build_id: str) -> _schemas.Build:
    """One build (by id or unique prefix), with its environment's packages."""
    context = _context(request)
    ref = _hex(build_id, "build id")

    def query(conn: Connection) -> BuildInfo | None:
        return _queries.build_header(conn, _lookup.build_id(conn, ref))

    try:
        info = context.registry.read(query)
    except StardagError as exc:
        raise _fail(exc) from None
    if info is None:
        raise HTTPException(404, f"no build {ref}")
    return _build(info, packages=True)


@router.get("/builds/{build_id}/runs", response_model=_schemas.RunsPage)
def build_runs(
    request: Request,
    build_id: str,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=_queries.MAX_PAGE)] = _queries.MAX_PAGE,
) -> Response:
    """A build's runs in the order they started: the timeline, a page at a time."""
    context = _context(request)
    ref = _hex(build_id, "build id")
    runs = context.registry.read(lambda conn: _queries.build_runs(conn, ref, offset, limit + 1))
    following = offset + limit if len(runs) > limit else None
    return _json({"runs": runs[:limit], "offset": offset, "next_offset": following})


def _json(data: object) -> Response:
    """Plain data as JSON, bypassing a second validation: for the long lists only.

    Their shape is the endpoint's `response_model` (a test checks every answer
    against it), which is what the OpenAPI schema documents.
    """
    return Response(json.dumps(data, default=_default), media_type="application/json")


def _default(value: object) -> str:
    if isinstance(value, datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON")


# -- tasks -------------------------------------------------------------------------------------
@router.get("/tasks/{task}", response_model=_schemas.Task)
def task(request: Request, task: str) -> _schemas.Task:
    """A task (by id, unique id prefix, or the digest of its output)."""
    context = _context(request)
    ref = _hex(task, "task id, id prefix or digest")
    try:
        graph = stardag.registry.lineage(ref, "up", 0, registry=context.registry)
    except StardagError as exc:
        raise _fail(exc) from None
    if len(graph.roots) > 1:
        shown = ", ".join(r[:16] for r in graph.roots[:10])
        raise HTTPException(409, f"{task} is the output of {len(graph.roots)} tasks: {shown}")
    node = graph[graph.roots[0]]
    row = context.registry.read(lambda conn: _queries.task_row(conn, node.task_id))
    store, record = context.read_record(node.task_id)
    output = None
    if node.digest is not None:
        output = _schemas.Output(
            digest=node.digest,
            serializer=node.serializer,
            size_raw=node.size_raw,
            size_stored=node.size_stored,
            created=node.created,
            build_id=node.build_id,
        )
    elif record is not None:
        output = _schemas.Output(
            digest=record.digest,
            serializer=record.serializer,
            size_raw=record.size_raw,
            size_stored=record.size_stored,
            created=_iso(record.created),
            build_id=None,
        )
    return _schemas.Task(
        id=node.task_id,
        namespace=node.namespace,
        name=node.name,
        label=node.label,
        version=node.version,
        params=node.params,
        first_seen=_utc(row.first_seen) if row else None,
        code=_code_of(context, node, row),
        output=output,
        complete=store.is_complete(node.task_id) if store is not None else None,
        store=store.url if store is not None else None,
    )


def _code_of(
    context: Context, node: stardag.registry.LineageNode, row: _queries.TaskRow | None
) -> _schemas.Code:
    built = node.fingerprint if node.build_id else None
    last_seen = row.fingerprint if row else None
    where = []
    build_id = node.build_id
    if build_id:
        info = context.registry.read(lambda conn: _queries.build_header(conn, build_id))
        if info is not None:
            where.append(info.cwd)  # the build ran there: its modules may be found there
    found = _code.code_now(node.module, node.qualname, where)
    now = found.fingerprint if found else None
    current = now or last_seen
    changed = None if not (built and current) else built != current
    return _schemas.Code(
        module=node.module,
        qualname=node.qualname,
        built=built,
        last_seen=last_seen,
        now=now,
        path=found.path if found else None,
        changed=changed,
    )


def _utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)


def _iso(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@router.get("/tasks/{task_id}/preview", response_model=_schemas.Preview)
def task_preview(request: Request, task_id: str) -> _schemas.Preview:
    """A capped preview of a task's output, read from the store that holds its record."""
    context = _context(request)
    ref = _hex(task_id, "task id", exact=True)
    store, record = context.read_record(ref)
    if store is None or record is None:
        raise HTTPException(404, f"no configured store holds an output of task {ref}")
    return _schemas.Preview(**asdict(_preview.preview_record(store, record)))


@router.get("/tasks/{task_id}/history", response_model=list[_schemas.Run])
def task_history(
    request: Request,
    task_id: str,
    limit: Annotated[int, Query(ge=1, le=_queries.MAX_PAGE)] = 100,
) -> Response:
    """A task's runs across builds and its audits, newest first."""
    context = _context(request)
    ref = _hex(task_id, "task id", exact=True)
    try:
        runs = stardag.registry.history(ref, limit=limit, registry=context.registry)
    except StardagError as exc:
        raise _fail(exc) from None
    return _json([_schemas.run_data(r) for r in runs])


@router.get("/tasks/{task_id}/lineage", response_model=_schemas.Lineage)
def task_lineage(
    request: Request,
    task_id: str,
    direction: Literal["up", "down", "both"] = "both",
    depth: Annotated[int | None, Query(ge=0, le=1000)] = None,
) -> Response:
    """The task's lineage: what it was made from, what used it, or both."""
    context = _context(request)
    ref = _hex(task_id, "task id", exact=True)
    try:
        graph = stardag.registry.lineage(ref, direction, depth, registry=context.registry)
    except StardagError as exc:
        raise _fail(exc) from None
    kept = _nearest(graph, MAX_NODES)
    nodes = [_schemas.node_data(n) for n in graph if n.task_id in kept]
    edges = [
        {"task_id": e.task_id, "dep_id": e.dep_id, "kind": e.kind}
        for e in graph.edges
        if e.task_id in kept and e.dep_id in kept
    ]
    return _json(
        {
            "roots": list(graph.roots),
            "direction": graph.direction,
            "nodes": nodes,
            "edges": edges,
            "truncated": len(kept) < len(graph),
        }
    )


def _nearest(graph: LineageGraph, cap: int) -> set[str]:
    """Up to `cap` task ids of the graph, breadth first from its roots."""
    if len(graph) <= cap:
        return set(graph.nodes)
    kept = dict.fromkeys(graph.roots)
    queue = deque(graph.roots)
    while queue and len(kept) < cap:
        task_id = queue.popleft()
        edges = [*graph.dependencies(task_id), *graph.dependents(task_id)]
        for other in (e.dep_id if e.task_id == task_id else e.task_id for e in edges):
            if other not in kept and len(kept) < cap:
                kept[other] = None
                queue.append(other)
    return set(kept)


# -- outputs, search, store --------------------------------------------------------------------
@router.get("/outputs/{digest}", response_model=_schemas.BlobOutput)
def output(request: Request, digest: str) -> _schemas.BlobOutput:
    """An output by its digest: the tasks that produced it and a preview of its bytes."""
    context = _context(request)
    key = _hex(digest, "blob digest", exact=True)
    producers = stardag.registry.producers(key, registry=context.registry)
    rows = context.registry.read(lambda conn: _queries.producers(conn, key, SEARCH_LIMIT))
    briefs = [_schemas.TaskBrief.of(r) for r in rows]
    for producer in producers:
        store, record = context.read_record(producer.task_id)
        if store is not None and record is not None and record.digest == key:
            shown = _preview.preview_record(store, record)
            return _schemas.BlobOutput(
                digest=key,
                producers=briefs,
                store=store.url,
                preview=_schemas.Preview(**asdict(shown)),
            )
    for store in context.stores:
        if producers and store.has_blob(key):
            out = producers[0].output
            shown = _preview.preview_blob(store, key, out.serializer, out.size_raw)
            return _schemas.BlobOutput(
                digest=key,
                producers=briefs,
                store=store.url,
                preview=_schemas.Preview(**asdict(shown)),
            )
    if not producers:
        raise HTTPException(404, f"no recorded output has digest {key}")
    return _schemas.BlobOutput(digest=key, producers=briefs, store=None, preview=None)


@router.get("/search", response_model=_schemas.Search)
def search(
    request: Request, q: Annotated[str, Query(min_length=1, max_length=200)]
) -> _schemas.Search:
    """Tasks by name or id prefix, outputs by digest prefix, builds by id prefix."""
    context = _context(request)
    text = q.strip()
    hexed = text.lower() if _is_hex(text.lower()) else None

    def query(
        conn: Connection,
    ) -> tuple[
        dict[str, int], list[_queries.TaskRow], dict[str, list[_queries.TaskRow]], list[str]
    ]:
        families, tasks = _queries.tasks_named(conn, text, SEARCH_LIMIT)
        digests: dict[str, list[_queries.TaskRow]] = {}
        build_ids: list[str] = []
        if hexed:
            tasks = _queries.tasks_prefixed(conn, hexed, SEARCH_LIMIT) + tasks
            for digest in _queries.digests_prefixed(conn, hexed, 10):
                digests[digest] = _queries.producers(conn, digest, SEARCH_LIMIT)
            build_ids = _queries.builds_prefixed(conn, hexed, 10)
        return families, tasks, digests, build_ids

    families, tasks, digests, build_ids = context.registry.read(query)
    unique = list({row.id: row for row in tasks}.values())[:SEARCH_LIMIT]
    hits = [
        _schemas.DigestHit(digest=d, producers=[_schemas.TaskBrief.of(r) for r in rows])
        for d, rows in digests.items()
    ]
    return _schemas.Search(
        query=text,
        families=families,
        tasks=[_schemas.TaskBrief.of(r) for r in unique],
        digests=hits,
        builds=build_ids,
    )


@router.get("/store", response_model=_schemas.StoreStats)
def store_stats(request: Request) -> _schemas.StoreStats:
    """Counts, sizes, compression and deduplication of the recorded outputs."""
    context = _context(request)
    totals = context.totals.get()
    return _schemas.StoreStats(
        registry=context.registry.url,
        roots=context.roots,
        outputs=totals.outputs,
        blobs=totals.blobs,
        bytes_raw=totals.raw_all,
        bytes_unique=totals.raw_unique,
        bytes_stored=totals.stored_unique,
        compression_ratio=_ratio(totals.raw_unique, totals.stored_unique),
        dedup_ratio=_ratio(totals.raw_all, totals.raw_unique),
    )


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


@router.get("/store/gc", response_model=_schemas.GcPreview)
def gc_preview(request: Request, refresh: bool = False) -> _schemas.GcPreview:
    """What `stardag gc` would free under the default policy (a dry run in the background)."""
    view = _context(request).gc.view(refresh)
    return _schemas.GcPreview(
        state=view.state,
        started=_utc(view.started) if view.started else None,
        finished=_utc(view.finished) if view.finished else None,
        error=view.error,
        **view.result,
    )
