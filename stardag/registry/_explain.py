"""`explain`: why a task is complete or would run, and what differs from its nearest run.

Completeness is the store's verdict (its action record, and the blob it names);
the registry adds history. The nearest previous run is, among the recent runs
of other task ids of the same namespace and name, the one whose spec differs in
the fewest places (the most recent on a tie). Differences are parameters, the
version, the code fingerprint (which is not part of the id: changed code alone
never reruns a task, so explain also says when the code changed since the output
was made), and upstream tasks, with whether their outputs' bytes differ and
which of their own parameters changed. Parameters are named and shown the way
the user wrote them (`cfg.layers[1]`, `datetime.date(2024, 1, 1)`; see
`_params`). An upstream task whose code changed since its output was made is
reported too: it is not rerun either, so what flows downstream is the old code's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from stardag import _config
from stardag.registry import _history, _lineage, _lookup, _params
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
    # Upstream tasks whose code changed since their output was made ("name id12").
    upstream_code_changed: tuple[str, ...] = ()

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
        if self.upstream_code_changed:
            lines.append(
                "  upstream code changed since their outputs were made: "
                f"{', '.join(self.upstream_code_changed)} (bump their `version` to rerun them)"
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
    upstream: dict[str, BaseTask] | None = None  # live upstream tasks by id (task given)


def explain(registry: Registry, ref: BaseTask | str) -> Explanation:
    """Explain a task (or a recorded task id or prefix)."""
    subject = _subject(registry, ref)
    return registry.read(lambda conn: _explain(conn, subject))


def _subject(registry: Registry, ref: BaseTask | str) -> _Subject:
    if isinstance(ref, BaseTask):
        complete, reason = _completeness(ref)
        upstream = _closure(ref)
        return _Subject(ref.id, ref.spec(), fingerprint(type(ref)), complete, reason, upstream)
    task_id = registry.read(lambda conn: _lookup.task_id(conn, ref))
    row = registry.read(lambda conn: conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one())
    spec = json.loads(row.spec)
    output = registry.read(lambda conn: _history.latest_output(conn, task_id))
    store = store_for(output.store if output and output.store else _config.target_root())
    complete, reason = _store_verdict(store, task_id)
    cls = _classes.registered().get((row.namespace, row.name))
    return _Subject(task_id, spec, fingerprint(cls) if cls else None, complete, reason)


def _closure(task: BaseTask) -> dict[str, BaseTask]:
    """Every task upstream of `task` (its static dependencies, transitively), by id."""
    found: dict[str, BaseTask] = {}
    stack = list(flatten_task_struct(task.requires()))
    while stack:
        each = stack.pop()
        if each.id not in found:
            found[each.id] = each
            stack.extend(flatten_task_struct(each.requires()))
    return found


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
    upstream_code_changed = _upstream_code_changed(conn, subject)
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
        upstream_code_changed=upstream_code_changed,
    )


def _upstream_code_changed(conn: Connection, subject: _Subject) -> tuple[str, ...]:
    """Upstream tasks whose code now differs from the code that made their outputs.

    The code now is a live task's class, else the class registered under the
    recorded name (when its module is imported); the code then is the producing
    run's fingerprint, as lineage records it.
    """
    if subject.upstream is not None:
        classes = {task_id: type(task) for task_id, task in subject.upstream.items()}
        graph = _lineage.lineage(conn, list(classes), "up", 0) if classes else None
    else:
        graph = _lineage.lineage(conn, [subject.task_id], "up", None)
        known = _classes.registered()
        classes = {
            node.task_id: known[(node.namespace, node.name)]
            for node in graph.nodes.values()
            if node.task_id != subject.task_id and (node.namespace, node.name) in known
        }
    changed = []
    for task_id, cls in sorted(classes.items(), key=lambda item: item[0]):
        node = graph.nodes.get(task_id) if graph is not None else None
        if node is None or not node.known or node.digest is None or not node.fingerprint:
            continue
        now = fingerprint(cls)
        if now is not None and now != node.fingerprint:
            changed.append(f"{node.label} {task_id[:12]}")
    return tuple(sorted(changed))


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
            upstream = subject.upstream or {}
            found.append(
                _upstream(conn, key.removeprefix("params."), a["$task"], b["$task"], upstream)
            )
        else:
            found.append(Difference("param", key.removeprefix("params."), _value(a), _value(b)))
    fingerprints = (previous.fingerprint, subject.fingerprint)
    if all(fingerprints) and fingerprints[0] != fingerprints[1]:
        found.append(Difference("code", "fingerprint", *fingerprints))
    return found


def _upstream(
    conn: Connection, name: str, before: str, after: str, live: dict[str, BaseTask]
) -> Difference:
    outputs = _history.outputs(conn, [before, after])
    a, b = outputs.get(before), outputs.get(after)
    if a is not None and b is not None and a.digest == b.digest:
        note = f"same output bytes {a.digest[:12]}: an early cutoff could reuse downstream"
    else:
        note = f"output {_digest(a)} -> {_digest(b)}"
    changed = _own_changes(conn, before, after, live)
    if changed:
        note = f"its {changed}; {note}"
    return Difference("upstream", name, {"$task": before}, {"$task": after}, note)


def _own_changes(conn: Connection, before: str, after: str, live: dict[str, BaseTask]) -> str:
    """How an upstream task's own parameters changed (`limit: 4 -> 5`), where both are known."""
    specs = {
        row.id: json.loads(row.spec)
        for row in conn.execute(
            select(TASKS.c.id, TASKS.c.spec).where(TASKS.c.id.in_([before, after]))
        )
    }
    if after not in specs and after in live:
        specs[after] = live[after].spec()
    if before not in specs or after not in specs:
        return ""
    old, new = _flatten(specs[before]), _flatten(specs[after])
    shown = [
        f"{key.removeprefix('params.')}: {_params.show(old.get(key, _ABSENT))} -> "
        f"{_params.show(new.get(key, _ABSENT))}"
        for key in sorted(old.keys() | new.keys())
        if key.startswith("params.")
        and old.get(key, _ABSENT) != new.get(key, _ABSENT)
        and not (_is_task(old.get(key)) and _is_task(new.get(key)))
    ]
    return ", ".join(shown)


def _digest(output: OutputInfo | None) -> str:
    return output.digest[:12] if output is not None else "not recorded"


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


_is_task = _params.is_task


def _flatten(spec: Any) -> dict[str, Any]:
    """Leaves of a spec by the path a user would write; a dependency is one leaf."""
    return _params.leaves(spec)


def _value(encoded: Any) -> Any:
    """A parameter's value as the user wrote it (absent stays absent)."""
    return encoded if encoded is _ABSENT else _params.decode(encoded)


def _show(value: Any) -> str:
    if _is_task(value):
        return f"task {value['$task'][:12]}"
    return repr(value)
