"""Naming tasks: ids, unique prefixes, `module:attr`; rebuilding a task from its spec."""

from __future__ import annotations

import datetime
import decimal
import enum
import pathlib
import uuid

import pydantic
import pytest

import stardag as sd
from stardag._config import target_root
from stardag._errors import AmbiguousTaskIdError, TaskNotFoundError
from stardag.maintenance._rebuild import rebuild
from stardag.maintenance._resolve import resolve_task_id, tasks_named
from stardag.registry import open as open_registry
from stardag.store._store import Store, store_for

sd.auto_namespace(__name__)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Window(pydantic.BaseModel):
    start: datetime.date
    days: int


@sd.task
def leaf(n: int) -> int:
    return n


@sd.task
def rich_params(
    up: sd.Depends[int],
    when: datetime.datetime,
    span: datetime.timedelta,
    tags: frozenset[str],
    pair: tuple[int, str],
    mapping: dict[str, float],
    keyed: dict[int, str],
    colour: Colour,
    path: pathlib.PurePosixPath,
    amount: decimal.Decimal,
    ident: uuid.UUID,
    window: Window,
    blob: bytes,
    odd: float,
) -> str:
    return "ok"


def _stores() -> list[Store]:
    return [store_for(target_root())]


def test_a_full_id_and_a_unique_prefix_name_the_task() -> None:
    """A built task is found by its id and by any prefix only it has."""
    task = leaf(n=1)
    sd.build(task)
    registry = open_registry()
    assert resolve_task_id(task.id, registry, _stores()) == task.id
    assert resolve_task_id(task.id[:10], registry, _stores()) == task.id


def test_a_store_record_is_found_without_a_registry() -> None:
    """A task built without a registry is still found through its action record."""
    task = leaf(n=2)
    sd.build(task, registry=None)
    assert resolve_task_id(task.id[:8], None, _stores()) == task.id


def test_an_ambiguous_prefix_lists_the_candidates() -> None:
    """A prefix two tasks share is an AmbiguousTaskIdError naming both."""
    tasks = [leaf(n=i) for i in range(60)]
    sd.build(tasks)
    by_prefix: dict[str, list[str]] = {}
    for task in tasks:
        by_prefix.setdefault(task.id[:2], []).append(task.id)
    prefix, ids = next((p, ids) for p, ids in by_prefix.items() if len(ids) > 1)
    with pytest.raises(AmbiguousTaskIdError) as caught:
        resolve_task_id(prefix, open_registry(), _stores())
    assert set(ids) <= set(caught.value.candidates)


def test_an_unknown_id_is_task_not_found() -> None:
    """An id nothing records is a TaskNotFoundError."""
    sd.build(leaf(n=3))
    with pytest.raises(TaskNotFoundError):
        resolve_task_id("f" * 64, open_registry(), _stores())


@pytest.mark.parametrize(
    "reference",
    ["not-hex-or-module", "cli_tasks:", ":pipeline", "cli tasks:pipeline", "ABCDEFG"],
)
def test_malformed_references_are_task_reference_errors(reference: str) -> None:
    """Neither hex nor module:attribute: a TaskReferenceError."""
    with pytest.raises(sd.TaskReferenceError):
        resolve_task_id(reference, None, _stores())


@pytest.mark.parametrize(
    "reference", ["no_such_module_anywhere:x", "cli_tasks:missing", "cli_tasks:not_a_task"]
)
def test_module_attr_must_import_and_name_a_task(reference: str) -> None:
    """A missing module, a missing attribute, or a non-task: a TaskReferenceError."""
    with pytest.raises(sd.TaskReferenceError):
        tasks_named(reference)


def test_module_attr_may_name_a_list_of_tasks() -> None:
    """`module:attr` naming a list gives every task in it."""
    import cli_tasks

    assert tasks_named("cli_tasks:both") == cli_tasks.both


def test_a_task_rebuilds_from_its_recorded_spec() -> None:
    """Every canonical kind of parameter decodes back to the same task id."""
    task = rich_params(
        up=leaf(n=4),
        when=datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
        span=datetime.timedelta(days=1, seconds=5),
        tags=frozenset({"a", "b"}),
        pair=(1, "x"),
        mapping={"$weird": 1.5, "plain": 2.0},
        keyed={3: "three"},
        colour=Colour.BLUE,
        path=pathlib.PurePosixPath("data/in.csv"),
        amount=decimal.Decimal("1.10"),
        ident=uuid.UUID(int=7),
        window=Window(start=datetime.date(2024, 1, 1), days=3),
        blob=b"\x00\x01",
        odd=float("inf"),
    )
    sd.build(task)
    rebuilt = rebuild(task.id, open_registry(), _stores())
    assert rebuilt.id == task.id
    assert rebuilt == task


def test_a_task_rebuilds_from_its_action_record_alone() -> None:
    """Without a registry the record's spec and the class registry suffice."""
    task = leaf(n=5)
    sd.build(task, registry=None)
    assert rebuild(task.id, None, _stores()).id == task.id


def test_a_task_whose_class_is_gone_cannot_be_rebuilt() -> None:
    """A recorded spec no loaded class claims is a TaskImportError naming the task."""
    import dataclasses

    from stardag._hashing import task_id_of

    built = leaf(n=7)
    sd.build(built, registry=None)
    store = store_for(target_root())
    record = store.get_record(built.id)
    assert record is not None
    spec = {**record.spec, "name": "vanished"}
    ghost = dataclasses.replace(record, task_id=task_id_of(spec), spec=spec)
    store.put_record(ghost)
    with pytest.raises(sd.TaskImportError) as caught:
        rebuild(ghost.task_id, None, _stores())
    assert caught.value.task_id == ghost.task_id
