"""Why a task would run, or why it is a cache hit.

A task is a cache hit when its action record and every blob it needs are in
the store. Then the explanation says where its output came from, and whether
the task's code changed since it ran (a change of code alone keeps the id:
bump `version` to rebuild). Otherwise it says what is missing: a record whose
blob is gone (and why, when gc or repair deleted it), or no record at all, in
which case the nearest recorded task of the same family (fewest differing
parameters) shows what changed: a parameter, the version, or an upstream task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stardag._describe import find_record
from stardag._store import Store

if TYPE_CHECKING:
    from stardag.registry import Registry

CACHE_HIT = "cache hit"
WILL_RUN = "will run"


@dataclass
class Explanation:
    """The verdict and the reasons, one line each."""

    task_id: str
    verdict: str
    reasons: list[str] = field(default_factory=list)
    nearest: str | None = None  # the recorded task compared with, if any


def explain(
    task_id: str,
    registry: Registry | None,
    stores: Sequence[Store],
    spec: dict[str, Any] | None = None,
) -> Explanation:
    """Why `task_id` is a cache hit or would run in the next build.

    `spec` is the task's spec when the caller has the task itself (it may be new to
    the registry); otherwise the registry's is used.
    """
    store, record = find_record(task_id, stores)
    if store is not None and record is not None and store.is_complete(task_id):
        found = Explanation(task_id, CACHE_HIT)
        found.reasons.append(
            f"its output {record.digest[:12]} ({record.serializer}, {record.size_raw} bytes) "
            f"is in {store.url}, written {record.created}"
        )
        found.reasons += _code_change(task_id, registry, stores)
        return found
    found = Explanation(task_id, WILL_RUN)
    if record is not None:
        found.reasons.append(_gone(record.digest, registry))
        return found
    found.reasons.append("the store has no action record of it")
    spec = spec or _spec(task_id, registry)
    if spec is not None and registry is not None:
        _compare_with_nearest(found, spec, registry, stores)
    return found


def _spec(task_id: str, registry: Registry | None) -> dict[str, Any] | None:
    if registry is None:
        return None
    from stardag.registry import _queries

    row = registry.read(lambda conn: _queries.task(conn, task_id))
    return None if row is None else dict(row["spec"])


_DELETED_BY = {
    "gc": "gc deleted it",
    "corrupt": "verify --repair deleted it as corrupt",
    "missing": "verify --repair found it missing",
}


def _gone(digest: str, registry: Registry | None) -> str:
    why = ""
    if registry is not None:
        from stardag.registry._addons import OUTPUT_DELETIONS, ensure

        ensure(registry)
        query = OUTPUT_DELETIONS.select().where(OUTPUT_DELETIONS.c.digest == digest)
        row = registry.read(lambda conn: conn.execute(query).first())
        if row is not None:
            why = f" ({_DELETED_BY.get(row.reason, row.reason)})"
    return f"its record names output blob {digest[:12]}, which is no longer stored{why}"


def _code_change(task_id: str, registry: Registry | None, stores: Sequence[Store]) -> list[str]:
    """A line if the task's code now differs from the code that produced its output."""
    if registry is None:
        return []
    from stardag._rebuild import rebuild
    from stardag.registry import _queries
    from stardag.registry._fingerprint import fingerprint

    runs = registry.read(lambda conn: _queries.runs(conn, task_id, limit=20))
    ran = next((r["fingerprint"] for r in runs if r["outcome"] == "computed"), None)
    try:
        now = fingerprint(type(rebuild(task_id, registry, stores)))
    except Exception:  # noqa: BLE001  # its code cannot be imported here: nothing to compare
        return []
    if ran is None or now is None or ran == now:
        return []
    return [
        f"its code changed since it ran (fingerprint {ran[:12]} -> {now[:12]}); the output "
        "is still reused because code is not part of the id: bump `version` to rebuild"
    ]


def _compare_with_nearest(
    found: Explanation, spec: dict[str, Any], registry: Registry, stores: Sequence[Store]
) -> None:
    from stardag.registry import _queries

    namespace, name = str(spec.get("namespace", "")), str(spec.get("name", ""))
    family = f"{namespace}.{name}" if namespace else name
    others = registry.read(lambda conn: _queries.same_family(conn, namespace, name))
    others = [o for o in others if o["id"] != found.task_id]
    if not others:
        found.reasons.append(f"no task of family {family} was ever recorded: it is new")
        return
    nearest = min(others, key=lambda o: len(_differences(spec, o["spec"])))
    found.nearest = nearest["id"]
    store, _ = find_record(nearest["id"], stores)
    state = "complete" if store is not None and store.is_complete(nearest["id"]) else "recorded"
    found.reasons.append(f"nearest {state} task of family {family}: {nearest['id'][:12]}")
    found.reasons += ["  " + line for line in _differences(spec, nearest["spec"])]


def _differences(spec: dict[str, Any], other: dict[str, Any]) -> list[str]:
    lines = []
    if spec.get("version") != other.get("version"):
        lines.append(f"version: {other.get('version')!r} -> {spec.get('version')!r}")
    mine, theirs = spec.get("params", {}), other.get("params", {})
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            lines.append(_param_change(key, theirs.get(key), mine.get(key)))
    return lines


def _param_change(key: str, before: Any, after: Any) -> str:
    if isinstance(before, dict) and isinstance(after, dict) and "$task" in before | after:
        return f"upstream {key}: task {_short(before)} -> task {_short(after)}"
    return f"parameter {key}: {_short(before)} -> {_short(after)}"


def _short(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"$task"}:
        return str(value["$task"])[:12]
    text = "(unset)" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
