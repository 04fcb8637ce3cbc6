"""`sd.AliasTask[T]`: stand in for a finished task that can no longer be instantiated.

The invariant: an alias has the id of the task it stands for, so it is complete
exactly when that task's output is in the store, it loads that output, and a task
that depends on it has the same id as one that depends on the original. It never
runs: it only references an output that already exists.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, model_validator

from stardag import _hashing
from stardag._errors import TaskNotFoundError
from stardag.task._stored import Task

T = TypeVar("T")
_NO_RUN = "AliasTask does not run; it references the output of a task that was already built"


class AliasedMetadata(BaseModel):
    """What an alias stands for: the task id, where its output is, and its body (optional)."""

    id: str
    uri: str = ""
    body: dict[str, Any] | None = None

    @classmethod
    def from_task(cls, task: Any) -> AliasedMetadata:
        """The metadata of an existing task object."""
        target = task.target()
        return cls(
            id=task.id, uri=str(getattr(target, "uri", "")), body=task.model_dump(mode="json")
        )


class AliasTask(Task[T], Generic[T]):
    """A task with another task's id and output: `sd.AliasTask[int](aliased=...)`.

    Use it where the original task's class or parameters have changed beyond
    rebuilding but its output must stay in the DAG: downstream ids do not change.
    """

    __stardag_abstract__: ClassVar[bool] = False
    aliased: AliasedMetadata

    @model_validator(mode="after")
    def _needs_a_loaded_type(self) -> AliasTask[T]:
        if type(self).__pydantic_generic_metadata__["origin"] is None:
            raise TypeError(
                "AliasTask needs the type it loads: AliasTask[int](aliased=...) "
                "or AliasTask[int].from_registry(task_id)"
            )
        return self

    def _identify(self) -> None:
        object.__setattr__(self, "_sd_id", self.aliased.id)

    def _make_spec(self) -> dict[str, Any]:
        return {
            "key_schema": _hashing.KEY_SCHEMA,
            "namespace": type(self).get_namespace(),
            "name": type(self).get_name(),
            "version": self.version,
            "params": {"aliased": self.aliased.id},
        }

    @classmethod
    def from_registry(cls, task_id: str, registry: Any = None) -> AliasTask[T]:
        """An alias of the task `task_id`, from its action record in the store.

        The record (beside the blob, under the default root) holds what the alias
        needs; `registry` is accepted for the released stardag's signature.
        """
        from stardag import _config
        from stardag.store._store import record_path, store_for

        store = store_for(_config.target_root(_config.DEFAULT_TARGET_ROOT_KEY))
        record = store.get_record(str(task_id))
        if record is None:
            raise TaskNotFoundError(
                f"no action record for task {task_id} in {store.url}; an alias can only "
                "stand for a task whose output is stored",
                query=str(task_id),
            )
        return cls(
            aliased=AliasedMetadata(
                id=record.task_id,
                uri=f"{store.url}/{record_path(record.task_id)}",
                body=record.spec,
            )
        )

    def run(self) -> None:
        """Always refused: an alias only references an existing output."""
        raise NotImplementedError(_NO_RUN)
