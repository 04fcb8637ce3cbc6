"""What travels between the coordinator and a Modal worker: JSON both ways.

The coordinator sends a *payload*: the task as JSON (its class's namespace,
name and module, and its parameters, upstream tasks nested the same way), its
id, the store roots the build writes to, and the worker's name. A worker
(`run_payload`, what every Modal function of a `StardagApp` calls) imports the
module, rebuilds the task, checks that it hashes to the same id (same code,
same parameters), runs it once against those roots, and answers with JSON:
done (with the action record it wrote), yielded (dynamic dependencies that are
not complete yet) or failed (the error's type, message and traceback).

Invariants: nothing is pickled, so the worker needs only the task's code and
stardag, never this process's Python objects; the worker writes the store
(blob, then record) and never a registry; credentials never travel in a
payload (the worker gets them from its own environment, e.g. Modal secrets).
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import traceback
from typing import Any

from stardag import _config
from stardag._errors import ExecutorError, RemoteTaskError
from stardag._version import __version__
from stardag.build._executor import RunPlace, TaskDone, TaskFailed, TaskOutcome, TaskYielded
from stardag.build._worker import roots, run_task
from stardag.store._record import ActionRecord
from stardag.task import _classes
from stardag.task._base import BaseTask

PAYLOAD_SCHEMA = 1  # bump when the payload or answer format changes
EXECUTOR = "modal"


def task_json(task: BaseTask) -> dict[str, Any]:
    """A task as JSON that `task_from_json` rebuilds: class, module and parameters."""
    return {"module": type(task).__module__, "task": task.model_dump(mode="json")}


def task_from_json(data: dict[str, Any]) -> BaseTask:
    """Import the task's module, find its class by (namespace, name), validate."""
    importlib.import_module(data["module"])
    fields = data["task"]
    cls = _classes.resolve(fields["__namespace"], fields["__name"])
    task: BaseTask = cls.model_validate(fields)
    return task


def payload_for(task: BaseTask, worker: str) -> str:
    """The JSON payload that runs `task` on the Modal worker named `worker`."""
    return json.dumps(
        {
            "schema": PAYLOAD_SCHEMA,
            "stardag_version": __version__,
            "worker": worker,
            "task_id": task.id,
            "roots": _config.target_roots(),
            **task_json(task),
        },
        sort_keys=True,
    )


def run_payload(payload: str) -> str:
    """Run one payload here, as a Modal container does; answer in JSON. Never raises."""
    job = json.loads(payload)
    where = RunPlace(EXECUTOR, f"{job.get('worker')} {socket.gethostname()}:{os.getpid()}")
    try:
        task = _rebuild(job)
        with roots(job["roots"]):
            outcome = run_task(task, where)
    except Exception as exc:  # noqa: BLE001  # reported to the coordinator
        outcome = TaskFailed(where, exc, "".join(traceback.format_exception(exc)))
    return json.dumps(_answer(outcome))


def _rebuild(job: dict[str, Any]) -> BaseTask:
    if job.get("schema") != PAYLOAD_SCHEMA:
        raise ExecutorError(
            f"payload schema {job.get('schema')!r} from stardag {job.get('stardag_version')} "
            f"cannot be read by stardag {__version__} (schema {PAYLOAD_SCHEMA}) on this worker: "
            "install the same stardag version in the Modal image"
        )
    task = task_from_json(job)
    if task.id != job["task_id"]:
        raise ExecutorError(
            f"task {type(task).get_name()} hashes to {task.id[:12]} on this worker but to "
            f"{job['task_id'][:12]} where the build runs: the worker has other code or "
            "package versions. Rebuild the Modal image from the same code.",
            task_id=job["task_id"],
        )
    return task


def _answer(outcome: TaskOutcome) -> dict[str, Any]:
    where = {"executor": outcome.where.executor, "ref": outcome.where.ref}
    if isinstance(outcome, TaskDone):
        record = outcome.record
        return {
            "status": "done",
            "where": where,
            "record": record.to_json().decode() if record is not None else None,
            "dynamic": list(outcome.dynamic),
        }
    if isinstance(outcome, TaskYielded):
        return {"status": "yielded", "where": where, "tasks": [task_json(t) for t in outcome.tasks]}
    kind = type(outcome.error)
    return {
        "status": "failed",
        "where": where,
        "error": f"{kind.__module__}.{kind.__qualname__}",
        "message": str(outcome.error),
        "traceback": outcome.traceback,
    }


def outcome_from(answer: str, task: BaseTask) -> TaskOutcome:
    """The outcome a worker's JSON answer describes, for `task` (sent with the payload)."""
    data = json.loads(answer)
    where = RunPlace(data["where"]["executor"], data["where"]["ref"])
    status = data["status"]
    if status == "done":
        raw = data["record"]
        record = ActionRecord.from_json(raw.encode(), task.id) if raw is not None else None
        return TaskDone(where, record, tuple(data["dynamic"]))
    if status == "yielded":
        return TaskYielded(where, tuple(task_from_json(t) for t in data["tasks"]))
    error = RemoteTaskError(
        f"task {type(task).get_name()} ({task.id[:12]}) failed on Modal worker "
        f"{where.ref}: {data['error']}: {data['message']}",
        task_id=task.id,
    )
    error.add_note(f"worker traceback ({where.ref}):\n{data['traceback'].rstrip()}")
    return TaskFailed(where, error, data["traceback"])
