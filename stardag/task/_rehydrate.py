"""`sd.task_from_registry_data(body)`: a task rebuilt from its JSON, its class found by name.

The invariant: the body's `__namespace`/`__name` pick the registered class (its
module must be imported), nested tasks resolve the same way, and with
`expected_task_id` the rebuilt task's id must be that id, so a lossy round trip is
an error rather than a silently different task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stardag._errors import StardagError, TaskRehydrationError, UnstableSerializationError
from stardag.task import _classes
from stardag.task._base import NAME_KEY, NAMESPACE_KEY, BaseTask


def task_from_registry_data(
    task_data: Mapping[str, Any], *, expected_task_id: str | None = None
) -> BaseTask:
    """The task a body describes (`task.model_dump(mode="json")`, as the registry keeps it).

    Args:
        task_data: the body, with its `__namespace` and `__name` keys.
        expected_task_id: when given, the rebuilt task's id must equal it.

    Raises:
        TaskRehydrationError: no discriminator keys, no class registered under them
            (import its module first), invalid fields, or an id that does not match.
    """
    namespace, name = task_data.get(NAMESPACE_KEY), task_data.get(NAME_KEY)
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise TaskRehydrationError(
            f"task data has no {NAMESPACE_KEY!r}/{NAME_KEY!r} keys; pass the whole body "
            "(task.model_dump(mode='json')), not a part of it"
        )
    try:
        cls = _classes.resolve(namespace, name)
    except StardagError as exc:
        raise TaskRehydrationError(str(exc)) from None
    try:
        task: BaseTask = cls.model_validate(dict(task_data))
    except Exception as exc:
        raise TaskRehydrationError(
            f"task data does not validate as {namespace + '.' if namespace else ''}{name}: {exc}"
        ) from exc
    if expected_task_id is not None and task.id != str(expected_task_id):
        raise TaskRehydrationError(
            f"rebuilt {name} has id {task.id}, not the expected {expected_task_id}: a "
            "parameter's JSON does not round-trip, or the class changed since"
        )
    return task


def check_serialization_stability(task: BaseTask) -> None:
    """Check that `task` survives its own JSON round trip, as `task_from_registry_data` does it.

    The body dumped, rebuilt and dumped again must be the same body, and the
    rebuilt task must have the same id.

    Raises:
        UnstableSerializationError: naming the fields whose value moved, or why the
            body could not be rebuilt at all.
    """
    import json

    name = f"{type(task).get_name()} ({task.id[:12]})"
    try:
        body = json.loads(task.model_dump_json())
    except ValueError as exc:
        raise UnstableSerializationError(f"task {name} has no JSON body: {exc}") from exc
    try:
        rebuilt = task_from_registry_data(body, expected_task_id=task.id)
    except TaskRehydrationError as exc:
        raise UnstableSerializationError(f"task {name} does not round-trip: {exc}") from exc
    again = json.loads(rebuilt.model_dump_json())
    moved = sorted(key for key in body.keys() | again.keys() if body.get(key) != again.get(key))
    if moved:
        raise UnstableSerializationError(
            f"task {name}: field(s) {', '.join(moved)} change on a JSON round trip"
        )
