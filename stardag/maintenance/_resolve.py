"""Naming a task from the outside: a task id, a unique id prefix, or `module:attr`.

- `module:attr` imports `module` (with the current directory on the import path,
  as `python -m` has it) and takes `attr` (dotted for nested attributes): a task,
  or for `stardag build` a list or tuple of tasks.
- A full task id or an id prefix (hex, in either case) is looked up among the tasks the
  registry knows and the action records in the stores; a prefix must match one.

Anything else is a `TaskReferenceError`; an id or prefix that matches nothing is a
`TaskNotFoundError`, one that matches several an `AmbiguousTaskIdError`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stardag import _hashing
from stardag._errors import AmbiguousTaskIdError, TaskNotFoundError, TaskReferenceError
from stardag.task._base import BaseTask

if TYPE_CHECKING:
    from stardag.registry import Registry
    from stardag.store._store import Store

_HEX = re.compile(r"[0-9a-f]{1,64}")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_CANDIDATES = 10


def is_import_reference(reference: str) -> bool:
    """Whether `reference` has the shape `module:attr` (rather than an id or prefix)."""
    return ":" in reference


def import_object(reference: str) -> Any:
    """The object `module:attr` names, importing `module` with the cwd on the path."""
    module_name, _, attr = reference.partition(":")
    if not (_MODULE.fullmatch(module_name) and _MODULE.fullmatch(attr)):
        raise TaskReferenceError(
            f"{reference!r} is not of the form module:attribute (like pipeline:report_task)",
            reference=reference,
        )
    module = import_module(module_name, reference)
    found: Any = module
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise TaskReferenceError(
                f"module {module_name!r} has no attribute {attr!r}", reference=reference
            ) from None
    return found


def import_module(module_name: str, reference: str) -> Any:
    """Import a module as `python -m` would find it: the current directory first."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise TaskReferenceError(
            f"cannot import module {module_name!r} (from {cwd}): {exc}", reference=reference
        ) from None


def tasks_named(reference: str) -> list[BaseTask]:
    """The tasks `module:attr` names: one task, or a list or tuple of them."""
    found = import_object(reference)
    tasks = list(found) if isinstance(found, (list, tuple)) else [found]
    if not tasks or not all(isinstance(t, BaseTask) for t in tasks):
        raise TaskReferenceError(
            f"{reference} is a {type(found).__qualname__}, not a task (or a list of tasks); "
            "name a task instance, such as my_module:my_task = MyTask(...)",
            reference=reference,
        )
    return tasks


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """`key=value` pairs (`--param`); a value is JSON-decoded when it decodes, else a string."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise TaskReferenceError(f"--param {pair!r} is not key=value", reference=pair)
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def roots_named(references: Sequence[str], params: dict[str, Any] | None = None) -> list[BaseTask]:
    """The tasks several `module:attr` references name, for `stardag build`.

    Each names a task, a list or tuple of tasks, a task class (instantiated with
    `params`, the `--param` values) or a zero-argument callable returning a task or a
    list of tasks. `params` given with no task class among the references is an error.
    """
    params = params or {}
    roots: list[BaseTask] = []
    used_params = False
    for reference in references:
        found = import_object(reference)
        if isinstance(found, type) and issubclass(found, BaseTask):
            try:
                found = found(**params)
            except Exception as exc:  # noqa: BLE001  # ValidationError and friends: the user's input
                detail = str(exc).splitlines()
                raise TaskReferenceError(
                    f"cannot make {reference} from --param {params}: "
                    + "; ".join(line.strip() for line in detail[:4]),
                    reference=reference,
                ) from None
            used_params = True
        elif callable(found) and not isinstance(found, BaseTask):
            try:
                found = found()
            except Exception as exc:  # noqa: BLE001  # the user's function: reported in one line
                raise TaskReferenceError(
                    f"calling {reference}() raised {type(exc).__name__}: {exc}",
                    reference=reference,
                ) from None
        roots.extend(_tasks_in(found, reference))
    if params and not used_params:
        raise TaskReferenceError(
            "--param applies only to a reference that names a task class",
            reference=" ".join(references),
        )
    return roots


def _tasks_in(found: Any, reference: str) -> list[BaseTask]:
    tasks = list(found) if isinstance(found, (list, tuple)) else [found]
    if not tasks or not all(isinstance(t, BaseTask) for t in tasks):
        raise TaskReferenceError(
            f"{reference} is a {type(found).__qualname__}, not a task, a list of tasks, "
            "a task class (with --param) or a function returning tasks; name one, such "
            "as my_module:my_task = MyTask(...)",
            reference=reference,
        )
    return tasks


def task_named(reference: str) -> BaseTask:
    """The one task `module:attr` names."""
    tasks = tasks_named(reference)
    if len(tasks) != 1:
        raise TaskReferenceError(
            f"{reference} names {len(tasks)} tasks; name a single task", reference=reference
        )
    return tasks[0]


def resolve_task_id(reference: str, registry: Registry | None, stores: Sequence[Store] = ()) -> str:
    """The task id `reference` names: `module:attr`, a known id, or a unique id prefix."""
    if is_import_reference(reference):
        return task_named(reference).id
    if not _HEX.fullmatch(reference.lower()):
        raise TaskReferenceError(
            f"{reference!r} is not a task id, an id prefix (hex) or module:attribute",
            reference=reference,
        )
    reference = reference.lower()
    matches = find_task_ids(reference, registry, stores)
    if not matches:
        raise TaskNotFoundError(
            f"no task {'id' if len(reference) == 64 else 'id starts with'} {reference} "
            "in the registry or the store",
            query=reference,
        )
    if len(matches) > 1:
        shown = ", ".join(m[:12] for m in matches[:MAX_CANDIDATES])
        raise AmbiguousTaskIdError(
            f"task id prefix {reference} matches {len(matches)} tasks ({shown}); "
            "give more characters",
            query=reference,
            candidates=matches,
        )
    return matches[0]


def find_task_ids(prefix: str, registry: Registry | None, stores: Sequence[Store]) -> list[str]:
    """Known task ids starting with a hex prefix: registry tasks and store records."""
    found = set(_registry_ids(prefix, registry))
    for store in stores:
        found.update(_record_ids(prefix, store))
    return sorted(found)


def _registry_ids(prefix: str, registry: Registry | None) -> list[str]:
    if registry is None:
        return []
    from sqlalchemy import select

    from stardag.registry._models import TaskRow

    table = TaskRow.__table__  # type: ignore[attr-defined]
    # Every hex id starting with `prefix` sorts in [prefix, prefix + "g"): an index range scan.
    query = (
        select(table.c.id)
        .where(table.c.id >= prefix, table.c.id < prefix + "g")
        .limit(MAX_CANDIDATES + 1)
    )
    return list(registry.read(lambda conn: list(conn.execute(query).scalars())))


def _record_ids(prefix: str, store: Store) -> list[str]:
    if len(prefix) == 64:
        return [prefix] if store.get_record(prefix) is not None else []
    from stardag.store._store import RECORDS, task_id_of_record_path

    where = f"{RECORDS}/{prefix[:2]}" if len(prefix) >= 2 else RECORDS
    found = []
    for path in store.backend.walk(where):
        try:
            task_id = task_id_of_record_path(path)
        except ValueError:
            continue
        if task_id.startswith(prefix):
            found.append(task_id)
    return found


def is_digest(reference: str) -> bool:
    """Whether `reference` has the shape of a full blob digest or task id."""
    return _hashing.is_hex_key(reference)
