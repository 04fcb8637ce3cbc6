"""Pins: named gc roots. A pinned task and its whole upstream survive every gc."""

from __future__ import annotations

import getpass
import re
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select

from stardag import _hashing
from stardag._errors import InvalidKeyError, TaskReferenceError
from stardag.registry._addons import PINS, ensure, readable
from stardag.registry._db import Registry, resolve
from stardag.task._base import BaseTask

_NAME = re.compile(r"[A-Za-z0-9_.:/@+=-]{1,200}")


@dataclass(frozen=True)
class Pin:
    """A named gc root: the task id it keeps, when and by whom it was made."""

    name: str
    task_id: str
    created: float
    username: str | None


def pin(name: str, task: BaseTask | str, registry: Registry | str | None = None) -> Pin:
    """Pin `task` (a task or a task id) under `name`, replacing a pin of that name."""
    if not _NAME.fullmatch(name):
        raise TaskReferenceError(
            f"pin name {name!r} must be 1-200 letters, digits or _.:/@+=-", reference=name
        )
    task_id = task.id if isinstance(task, BaseTask) else task
    if not _hashing.is_hex_key(task_id):
        raise InvalidKeyError(f"{task_id!r} is not a task id (64 lowercase hex characters)")
    found = Pin(name, task_id, time.time(), _username())
    opened = resolve(registry)
    ensure(opened)
    opened.write(lambda conn: _put(conn, found))
    return found


def unpin(name: str, registry: Registry | str | None = None) -> Pin | None:
    """Remove the pin `name`; the pin removed, or None if there was none."""
    opened = resolve(registry)
    ensure(opened)
    return opened.write(lambda conn: _remove(conn, name))


def pins(registry: Registry | str | None = None) -> list[Pin]:
    """Every pin, by name."""
    opened = resolve(registry)
    return opened.read(_all) if readable(opened) else []


def _put(conn: Connection, found: Pin) -> None:
    conn.execute(delete(PINS).where(PINS.c.name == found.name))
    conn.execute(
        PINS.insert().values(
            name=found.name, task_id=found.task_id, created=found.created, username=found.username
        )
    )


def _remove(conn: Connection, name: str) -> Pin | None:
    row = conn.execute(select(PINS).where(PINS.c.name == name)).first()
    if row is None:
        return None
    conn.execute(delete(PINS).where(PINS.c.name == name))
    return Pin(row.name, row.task_id, row.created, row.username)


def _all(conn: Connection) -> list[Pin]:
    rows = conn.execute(select(PINS).order_by(PINS.c.name))
    return [Pin(r.name, r.task_id, r.created, r.username) for r in rows]


def _username() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return None
