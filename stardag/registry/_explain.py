"""`explain`: why a task is complete or would run, and what differs from its nearest run.

Completeness is the store's verdict (its action record, and the blob it names);
the registry adds history. The nearest previous run is, among the recent runs
of other task ids of the same namespace and name, the one whose spec differs in
the fewest places (the most recent on a tie). Differences are parameters, the
version, the code fingerprint (which is not part of the id: changed code alone
never reruns a task, so explain also says when the code changed since the output
was made), and upstream tasks, with whether their outputs' bytes differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from stardag import _config
from stardag.registry import _history, _lookup
from stardag.registry._db import Registry
from stardag.registry._fingerprint import fingerprint
from stardag.registry._info import OutputInfo, RunInfo
from stardag.registry._writes import RUNS, TASKS
from stardag.store._store import Store, store_for
from stardag.task import _classes
from stardag.task._base import BaseTask, flatten_task_struct
from stardag.task._stored import Task

CANDIDATES = 200  # recent task ids of the family considered for "nearest"


@dataclass(frozen=True)
class Difference:
    """One way a task differs from its nearest previous run."""

    kind: str  # param, version, code, upstream or key_schema
    name: str  # the parameter's path (`a.b[0]`), or the kind again
    before: Any
    after: Any
    note: str = ""

    def __str__(self) -> str:
        line = f"{self.kind} {self.name}: {_show(self.before)} -> {_show(self.after)}"
        return f"{line} ({self.note})" if self.note else line


@dataclass(frozen=True)
class Explanation:
    """Why a task is complete or would run, and how it differs from its nearest run."""

    task_id: str
    namespace: str
    name: str
    complete: bool
    reason: str
    output: OutputInfo | None  # its newest recorded output
    produced_by: RunInfo | None  # the run that wrote that output, if recorded
    code_changed: bool | None  # code now differs from the code of that run
    previous: RunInfo | None  # the nearest previous run of another id of the family
    differences: tuple[Difference, ...]

    def __str__(self) -> str:
        label = f"{self.namespace}.{self.name}" if self.namespace else self.name
        verdict = "complete" if self.complete else "would run"
        lines = [f"{label} {self.task_id[:12]}: {verdict}: {self.reason}"]
        if self.produced_by is not None:
            run = self.produced_by
            lines.append(
                f"  output written {run.started:%Y-%m-%d %H:%M:%S}Z in build {run.build_id[:8]}"
            )
        if self.code_changed:
            lines.append(
                "  its code changed since then (code is not in the id: bump `version` to rerun)"
            )
        if self.previous is not None:
            prev = self.previous
            lines.append(
                f"  nearest previous run: {prev.task_id[:12]} {prev.outcome} "
                f"{prev.started:%Y-%m-%d %H:%M:%S}Z in build {prev.build_id[:8]}"
            )
            lines.extend(f"    {difference}" for difference in self.differences)
        return "\n".join(lines)


@dataclass(frozen=True)
class _Subject:
    task_id: str
    spec: dict[str, Any]
    fingerprint: str | None
    complete: bool
    reason: str


def explain(registry: Registry, ref: BaseTask | str) -> Explanation:
    """Explain a task (or a recorded task id or prefix)."""
    subject = _subject(registry, ref)
    return registry.read(lambda conn: _explain(conn, subject))


def _subject(registry: Registry, ref: BaseTask | str) -> _Subject:
    if isinstance(ref, BaseTask):
        complete, reason = _completeness(ref)
        return _Subject(ref.id, ref.spec(), fingerprint(type(ref)), complete, reason)
    task_id = registry.read(lambda conn: _lookup.task_id(conn, ref))
    row = registry.read(lambda conn: conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one())
    spec = json.loads(row.spec)
    output = registry.read(lambda conn: _history.latest_output(conn, task_id))
    store = store_for(output.store if output and output.store else _config.target_root())
    complete, reason = _store_verdict(store, task_id)
    cls = _classes.registered().get((row.namespace, row.name))
    return _Subject(task_id, spec, fingerprint(cls) if cls else None, complete, reason)


def _completeness(task: BaseTask) -> tuple[bool, str]:
    if isinstance(task, Task):
        complete, reason = _store_verdict(task.target().store, task.id)
    else:
        complete = bool(task.complete())
        reason = f"its complete() returns {complete}"
    if not complete:
        missing = [d for d in flatten_task_struct(task.requires()) if not d.complete()]
        if missing:
            reason += f"; {len(missing)} of its dependencies would run first"
    return complete, reason


def _store_verdict(store: Store, task_id: str) -> tuple[bool, str]:
    record = store.get_record(task_id)
    if record is None:
        return False, f"no action record for it in {store.url}"
    if record.inline is None and not store.has_blob(record.digest):
        return False, f"its action record names blob {record.digest[:12]}, gone from {store.url}"
    return True, f"{store.url} holds its record and output {record.digest[:12]}"


def _explain(conn: Connection, subject: _Subject) -> Explanation:
    own = _history.history(conn, subject.task_id)
    output = _history.latest_output(conn, subject.task_id)
    produced_by = next(
        (r for r in own if output and r.outcome == "computed" and r.digest == output.digest), None
    )
    code_changed = None
    if produced_by is not None and produced_by.fingerprint and subject.fingerprint:
        code_changed = produced_by.fingerprint != subject.fingerprint
    previous, previous_spec = _nearest(conn, subject)
    differences: tuple[Difference, ...] = ()
    if previous is not None and previous_spec is not None:
        differences = tuple(_differences(conn, subject, previous, previous_spec))
    return Explanation(
        task_id=subject.task_id,
        namespace=str(subject.spec.get("namespace", "")),
        name=str(subject.spec.get("name", "")),
        complete=subject.complete,
        reason=subject.reason,
        output=output,
        produced_by=produced_by,
        code_changed=code_changed,
        previous=previous,
        differences=differences,
    )


def _nearest(conn: Connection, subject: _Subject) -> tuple[RunInfo | None, dict[str, Any] | None]:
    query = (
        select(RUNS.c.task_id, TASKS.c.spec)
        .join(TASKS, TASKS.c.id == RUNS.c.task_id)
        .where(
            TASKS.c.namespace == subject.spec.get("namespace", ""),
            TASKS.c.name == subject.spec.get("name", ""),
            RUNS.c.task_id != subject.task_id,
            RUNS.c.outcome.in_(("computed", "cached")),
        )
        .order_by(RUNS.c.started.desc())
        .limit(CANDIDATES)
    )
    specs: dict[str, dict[str, Any]] = {}
    for task_id, spec in conn.execute(query):
        specs.setdefault(task_id, json.loads(spec))  # in order: the most recent first
    if not specs:
        return None, None
    mine = _flatten(subject.spec)
    best = min(specs, key=lambda t: _distance(mine, _flatten(specs[t])))  # first wins ties
    return _history.history(conn, best, limit=1)[0], specs[best]


def _distance(a: dict[str, Any], b: dict[str, Any]) -> int:
    return sum(a.get(key) != b.get(key) for key in a.keys() | b.keys())


def _differences(
    conn: Connection, subject: _Subject, previous: RunInfo, before: dict[str, Any]
) -> list[Difference]:
    found = []
    old, new = _flatten(before), _flatten(subject.spec)
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a == b:
            continue
        if key in ("version", "key_schema"):
            found.append(Difference(key, key, a, b))
        elif _is_task(a) and _is_task(b):
            found.append(_upstream(conn, key.removeprefix("params."), a["$task"], b["$task"]))
        else:
            found.append(Difference("param", key.removeprefix("params."), a, b))
    fingerprints = (previous.fingerprint, subject.fingerprint)
    if all(fingerprints) and fingerprints[0] != fingerprints[1]:
        found.append(Difference("code", "fingerprint", *fingerprints))
    return found


def _upstream(conn: Connection, name: str, before: str, after: str) -> Difference:
    outputs = _history.outputs(conn, [before, after])
    a, b = outputs.get(before), outputs.get(after)
    if a is not None and b is not None and a.digest == b.digest:
        note = f"same output bytes {a.digest[:12]}: an early cutoff could reuse downstream"
    else:
        note = f"output {_digest(a)} -> {_digest(b)}"
    return Difference("upstream", name, {"$task": before}, {"$task": after}, note)


def _digest(output: OutputInfo | None) -> str:
    return output.digest[:12] if output is not None else "not recorded"


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _is_task(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "$task" in value


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Leaves of a spec by path; a dependency `{"$task": id}` is one leaf."""
    if isinstance(value, dict) and value and not _is_task(value):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out |= _flatten(item, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out |= _flatten(item, f"{path}[{index}]")
        return out
    return {path: value}


def _show(value: Any) -> str:
    if _is_task(value):
        return f"task {value['$task'][:12]}"
    return repr(value)
