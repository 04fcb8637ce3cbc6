"""Naming what to ask about: a task, a task id or unique prefix, a blob digest, a build id.

A 64-character hex string is a task id if the registry knows that task, else a
digest whose producers are meant. A shorter one is a task id prefix, else a
digest prefix; a prefix that matches several is an `AmbiguousTaskIdError`.
Prefix matches are range scans of the primary key, not `LIKE` (which SQLite
cannot serve from an index by default).
"""

from __future__ import annotations

import re
from typing import Any, TypeAlias

from sqlalchemy import Connection, select

from stardag._errors import AmbiguousTaskIdError, TaskNotFoundError, TaskReferenceError
from stardag.registry._writes import BUILDS, EDGES, OUTPUTS, TASKS
from stardag.task._base import BaseTask

TaskRef: TypeAlias = "BaseTask | str"
_HEX = re.compile(r"[0-9a-f]{1,64}")
SHOWN = 10


def task_ids(conn: Connection, ref: TaskRef) -> list[str]:
    """The task ids `ref` names: one task, or every producer of a digest."""
    if isinstance(ref, BaseTask):
        return [_known(conn, ref.id, f"{type(ref).get_name()} ({ref.id[:12]})")]
    text = _hex(ref)
    if len(text) == 64:
        if _task_known(conn, text):
            return [text]
        producers = _producers(conn, text)
        if producers:
            return producers
        raise _not_found(text, "no task id or output digest")
    ids = _prefixed(conn, TASKS.c.id, text)
    if len(ids) == 1:
        return ids
    if len(ids) > 1:
        raise _ambiguous(text, ids, "task id")
    digests = _prefixed(conn, OUTPUTS.c.digest, text)
    if len(digests) == 1:
        return _producers(conn, digests[0])
    if len(digests) > 1:
        raise _ambiguous(text, digests, "output digest")
    raise _not_found(text, "no task id or output digest starts with")


def task_id(conn: Connection, ref: TaskRef) -> str:
    """The one task id `ref` names (a digest with several producers is ambiguous)."""
    ids = task_ids(conn, ref)
    if len(ids) > 1:
        shown = ", ".join(i[:16] for i in ids[:SHOWN])
        raise AmbiguousTaskIdError(
            f"{ref} is an output digest of {len(ids)} tasks ({shown}); name one of them",
            query=str(ref),
            candidates=ids[:SHOWN],
        )
    return ids[0]


def build_id(conn: Connection, ref: str) -> str:
    """The build id a full id or unique prefix names."""
    text = ref.strip().lower()
    if not _HEX.fullmatch(text):
        raise TaskReferenceError(
            f"{ref!r} is not a build id: give a build id or a unique prefix of one "
            "(hex, as `stardag builds` lists them)",
            reference=ref,
        )
    ids = _prefixed(conn, BUILDS.c.id, text)
    if len(ids) == 1:
        return ids[0]
    if len(ids) > 1:
        raise _ambiguous(text, ids, "build id")
    raise _not_found(text, "no build id starts with")


def _hex(ref: str) -> str:
    text = ref.strip().lower()
    if not _HEX.fullmatch(text):
        raise TaskReferenceError(
            f"{ref!r} is not a task id, an id prefix or a blob digest (hex)",
            reference=ref,
        )
    return text


def _known(conn: Connection, task_id: str, label: str) -> str:
    if _task_known(conn, task_id):
        return task_id
    raise TaskNotFoundError(
        f"task {label} is not in the registry: build it (or reindex its store) first",
        query=task_id,
    )


def _task_known(conn: Connection, task_id: str) -> bool:
    tasks = select(TASKS.c.id).where(TASKS.c.id == task_id)
    edges = select(EDGES.c.dep_id).where(EDGES.c.dep_id == task_id).limit(1)
    return conn.execute(tasks).first() is not None or conn.execute(edges).first() is not None


def _producers(conn: Connection, digest: str) -> list[str]:
    query = select(OUTPUTS.c.task_id).where(OUTPUTS.c.digest == digest).distinct()
    return sorted(conn.execute(query).scalars())


def _prefixed(conn: Connection, column: Any, prefix: str) -> list[str]:
    # Every hex string starting with `prefix` sorts in [prefix, prefix + "g").
    query = (
        select(column)
        .where(column >= prefix, column < prefix + "g")
        .distinct()
        .order_by(column)
        .limit(SHOWN + 1)
    )
    return list(conn.execute(query).scalars())


def _not_found(text: str, what: str) -> TaskNotFoundError:
    return TaskNotFoundError(f"{what} {text} in the registry", query=text)


def _ambiguous(text: str, matches: list[str], what: str) -> AmbiguousTaskIdError:
    shown = ", ".join(m[:16] for m in matches[:SHOWN])
    more = " and more" if len(matches) > SHOWN else ""
    return AmbiguousTaskIdError(
        f"{what} prefix {text} matches several ({shown}{more}); give more characters",
        query=text,
        candidates=matches[:SHOWN],
    )
