"""Reproducibility audits: re-run a task in a scratch store and compare output digests.

`audit(task)` re-runs one task: its direct inputs are copied from the real store
into a scratch store (so only the task itself runs), the task is built there,
and the digest it writes is compared with the recorded one. With
`upstream=True` the scratch store starts empty and the whole upstream closure
runs, each task compared with its recorded output.

Every verdict (`reproduced`, `differs` with both digests, `failed`,
`unrecorded`) is stored in the registry, where `stardag history` shows it. The
real store and the registry's build history are untouched: the scratch build
runs with every root key pointed at a temporary folder and without recording.
While it runs, this process's `STARDAG_TARGET_ROOTS__*` variables point there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stardag import _config
from stardag._errors import StardagError
from stardag.build import FailMode, build
from stardag.registry._audits import DIFFERS, FAILED, REPRODUCED, UNRECORDED, Verdict
from stardag.store._store import ActionRecord, Store, store_for
from stardag.task._base import BaseTask, flatten_task_struct
from stardag.task._stored import Task

if TYPE_CHECKING:
    from stardag.registry import Registry

_ROOT_VAR = "STARDAG_TARGET_ROOTS__"


@dataclass
class AuditReport:
    """The verdicts of one audit, the audited task's first."""

    root_id: str
    upstream: bool
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        """Whether every audited task wrote its recorded digest again."""
        return all(v.verdict == REPRODUCED for v in self.verdicts)


def audit(
    task: BaseTask, *, upstream: bool = False, registry: Registry | str | None = None
) -> AuditReport:
    """Re-run `task` (with `upstream`, its whole closure) in a scratch store and compare.

    Args:
        task: the task to audit; it must have been built (or its verdict is `unrecorded`).
        upstream: re-run every upstream task too, starting from an empty store.
        registry: where the verdicts go (default: the default registry).
    """
    from stardag.registry._db import resolve

    opened = resolve(registry)
    closure = _closure(task) if upstream else [task]
    audited = [t for t in closure if isinstance(t, Task)]
    recorded = _recorded_digests(audited, opened)
    inputs = [] if upstream else _inputs(task, _record(task))
    started = time.time()
    with _scratch() as scratch:
        _copy_inputs(inputs, scratch)
        errors = _run(task)
        produced = {t.id: _record(t) for t in audited}
    report = AuditReport(task.id, upstream)
    for each in audited:
        report.verdicts.append(
            _verdict(each, recorded[each.id], produced[each.id], errors, started, report)
        )
    from stardag.registry._audits import record_verdicts

    record_verdicts(report.verdicts, opened)
    return report


def _closure(task: BaseTask) -> list[BaseTask]:
    """`task` and every task upstream of it (static dependencies), task first."""
    found: dict[str, BaseTask] = {task.id: task}
    stack = [task]
    while stack:
        for dep in flatten_task_struct(stack.pop().requires()):
            if dep.id not in found:
                found[dep.id] = dep
                stack.append(dep)
    return list(found.values())


def _recorded_digests(tasks: list[Task[Any]], registry: Registry) -> dict[str, str | None]:
    """Each task's recorded output digest: its action record's, else the registry's latest."""
    found: dict[str, str | None] = {}
    for task in tasks:
        record = _record(task)
        found[task.id] = record.digest if record is not None else None
    missing = [t for t, d in found.items() if d is None]
    if missing:
        import stardag.registry

        recorded = stardag.registry.outputs(missing, registry=registry)
        found |= {t: output.digest for t, output in recorded.items()}
    return found


def _record(task: BaseTask) -> ActionRecord | None:
    if not isinstance(task, Task):
        return None
    try:
        return task.target().record()
    except StardagError:
        return None


def _inputs(task: BaseTask, record: ActionRecord | None) -> list[tuple[BaseTask | str, Store]]:
    """The outputs the task reads, with the store each lives in now: to copy to scratch."""
    inputs: list[tuple[BaseTask | str, Store]] = []
    for dep in flatten_task_struct(task.requires()):
        if isinstance(dep, Task):
            inputs.append((dep, dep.target().store))
    if record is not None and isinstance(task, Task):
        inputs += [(dep_id, task.target().store) for dep_id in record.dynamic]
    return inputs


@contextlib.contextmanager
def _scratch() -> Iterator[str]:
    """Point every root key at a fresh temporary folder; restore everything after."""
    folder = tempfile.mkdtemp(prefix="stardag-audit-")
    saved = {k: v for k, v in os.environ.items() if k.startswith(_ROOT_VAR)}
    saved_flag = os.environ.get("STARDAG_NO_REGISTRY")
    try:
        for key in _config.target_roots():
            os.environ[_ROOT_VAR + key.upper()] = os.path.join(folder, key)
        os.environ["STARDAG_NO_REGISTRY"] = "1"  # the scratch build is not history
        yield folder
    finally:
        for name in [k for k in os.environ if k.startswith(_ROOT_VAR)]:
            del os.environ[name]
        os.environ.update(saved)
        if saved_flag is None:
            os.environ.pop("STARDAG_NO_REGISTRY", None)
        else:
            os.environ["STARDAG_NO_REGISTRY"] = saved_flag
        shutil.rmtree(folder, ignore_errors=True)


def _copy_inputs(inputs: list[tuple[BaseTask | str, Store]], scratch: str) -> None:
    """Copy each input's record and blobs from its real store to the scratch store."""
    for dep, source in inputs:
        if isinstance(dep, Task):
            target = dep.target().store  # now under the scratch roots
        else:
            target = store_for(os.path.join(scratch, _config.DEFAULT_TARGET_ROOT_KEY))
        record = source.get_record(dep if isinstance(dep, str) else dep.id)
        if record is None:
            continue  # missing input: the scratch build runs it, as a build would
        for digest in source.required_blobs(record):
            source.copy_blob(digest, target)
        target.put_record(record)


def _run(task: BaseTask) -> dict[str, BaseException]:
    """Build `task` where the roots now point; the errors of tasks that failed."""
    summary = build(task, fail_mode=FailMode.CONTINUE)
    return dict(summary.failures)


def _verdict(
    task: Task[Any],
    recorded: str | None,
    produced: ActionRecord | None,
    errors: dict[str, BaseException],
    when: float,
    report: AuditReport,
) -> Verdict:
    error = errors.get(task.id)
    if error is not None or produced is None:
        verdict, text = FAILED, repr(error) if error is not None else "it wrote no output"
    elif recorded is None:
        verdict, text = UNRECORDED, None
    else:
        verdict, text = (REPRODUCED if recorded == produced.digest else DIFFERS), None
    return Verdict(
        task_id=task.id,
        audited=when,
        verdict=verdict,
        recorded_digest=recorded,
        audit_digest=produced.digest if produced else None,
        upstream=report.upstream,
        root_id=report.root_id,
        error=text,
    )
