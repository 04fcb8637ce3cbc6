"""`sd.Task[T]`: a task whose output lives in the content-addressed store.

`task.target()` (alias `task.output()`) is an `Output`: `save(value)` serializes
the value into a blob and then publishes the task's action record; `load()`
reads it back, verifying the digest; `exists()` is the store's completeness.
"""

from __future__ import annotations

import base64
import io
import typing
import warnings
from typing import Any, ClassVar, Generic, TypeVar

from stardag import _config
from stardag._errors import SerializationError, StardagError, TargetNotFoundError
from stardag.store import _serialize
from stardag.store._blob import BlobInfo
from stardag.store._directory import Directory
from stardag.store._store import INLINE_MAX, SMALL_BLOB, ActionRecord, Store, now_iso, store_for
from stardag.task._base import LoadableTask, flatten_task_struct
from stardag.task._validate import run_validators, validators_of

T = TypeVar("T")


class Output(Generic[T]):
    """A task's output in the store under the root configured when it is used."""

    def __init__(self, task: Task[T]) -> None:
        self.task = task

    @property
    def store(self) -> Store:
        """The store of the task's root key, as configured right now."""
        return store_for(_config.target_root(self.task._target_root_key))

    @property
    def uri(self) -> str:
        """Where the task's action record lives."""
        from stardag.store._store import record_path

        return f"{self.store.url}/{record_path(self.task.id)}"

    def record(self) -> ActionRecord | None:
        """The task's action record, if it has one."""
        return self.store.get_record(self.task.id)

    def exists(self) -> bool:
        """Whether the task is complete: its record and the blob it names exist."""
        return self.store.is_complete(self.task.id)

    async def exists_aio(self) -> bool:
        """Async `exists()`."""
        return self.exists()

    def save(self, value: T) -> ActionRecord:
        """Serialize `value` into a blob, then publish the task's action record."""
        task = self.task
        state = task._run_state  # set by the build engine for the run; None outside one
        if state is not None:
            state["gate"].check(task.id)  # its build was abandoned: write nothing
        validators = type(task).__stardag_validators__
        if validators:
            value = run_validators(validators, value)
        store = self.store
        serializer = _serialize.for_store(type(task).__stardag_serializer__, store)
        _check_class(task, serializer, value)
        try:
            info = _stored(store, serializer, value)
        except SerializationError as exc:
            raise SerializationError(
                f"task {_describe(task)} returned a {type(value).__qualname__} that its "
                f"{serializer.name} serializer cannot store: {exc}",
                task_id=task.id,
            ) from exc.__cause__
        requires = None if state is None else state.get("requires")
        if requires is None:  # saved outside a build's engine
            requires = [dep.id for dep in flatten_task_struct(task.requires())]
        record = ActionRecord.assemble(
            task_id=task.id,
            spec=task.spec(),
            digest=info.digest,
            serializer=serializer.name,
            size_raw=info.size_raw,
            size_stored=info.size_stored,
            compression=info.compression,
            created=now_iso(),
            requires=requires,
            dynamic=list(state.get("dynamic", ())) if state else [],
            inline=base64.b64encode(info.inline).decode() if info.inline is not None else None,
        )
        if state is None:
            store.publish_record(record)
            return record
        # Inside a build: never once the build has abandoned this task (Ctrl-C twice).
        with state["gate"].publishing(task.id):
            store.publish_record(record)
            state["record"] = record
        return record

    def staging_dir(self) -> Directory:
        """An empty local folder from this output's store, for a directory output."""
        return Directory.staging_in(self.store)

    async def save_aio(self, value: T) -> ActionRecord:
        """Async `save()`."""
        return self.save(value)

    def load(self) -> T:
        """The task's value, read from its blob and verified against the digest."""
        task = self.task
        store = self.store
        record = store.get_record(task.id)
        if record is None:
            raise TargetNotFoundError(
                f"task {_describe(task)} has no output in {store.url}; build it first "
                "(sd.build(task))",
                task_id=task.id,
            )
        serializer = type(task).__stardag_serializer__
        if serializer.name != record.serializer:
            serializer = _serialize.by_name(record.serializer, type(task).__stardag_output_type__)
        serializer = _serialize.for_store(serializer, store)
        if record.size_raw <= SMALL_BLOB:
            value = _deserialize(serializer, io.BytesIO(store.read_output(record)), task)
        else:
            with store.open_blob(record.digest, task.id, record.size_raw) as reader:
                buffered = io.BufferedReader(
                    reader, 1 << 20
                )  # kept: its collection closes `reader`
                value = _deserialize(serializer, buffered, task)
                reader.verify()
        validators = type(task).__stardag_validators__
        if validators:
            value = run_validators(validators, value)
        return typing.cast(T, value)

    async def load_aio(self) -> T:
        """Async `load()`."""
        return self.load()

    def __repr__(self) -> str:
        return f"Output({_describe(self.task)})"


def _stored(store: Store, serializer: _serialize.Serializer, value: Any) -> BlobInfo:
    """Serialize `value` into the store: a blob, or bytes to keep in the record."""
    dump_bytes = getattr(serializer, "dump_bytes", None)
    if dump_bytes is not None:  # a serializer that builds the bytes in memory anyway
        return store.put_output(dump_bytes(value), inline_max=INLINE_MAX)
    writer = store.writer(inline_max=INLINE_MAX)
    try:
        serializer.dump(value, typing.cast(typing.IO[bytes], writer))
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


def _deserialize(serializer: _serialize.Serializer, source: typing.IO[bytes], task: Any) -> Any:
    try:
        return serializer.load(source)
    except StardagError:
        raise
    except Exception as exc:
        raise SerializationError(
            f"the stored output of task {_describe(task)} cannot be loaded with its "
            f"{serializer.name} serializer: {exc}",
            task_id=task.id,
        ) from exc


def _check_class(task: Any, serializer: _serialize.Serializer, value: Any) -> None:
    """A pickled output must be what its task declares (JSON outputs are validated)."""
    declared = type(task).__stardag_output_type__
    plain = isinstance(declared, type) and declared not in (object, Any)
    if serializer.name == "pickle" and plain and not isinstance(value, declared):
        raise SerializationError(
            f"task {_describe(task)} returned a {type(value).__qualname__}, not the "
            f"{declared.__qualname__} it declares; nothing was stored",
            task_id=task.id,
        )


def _describe(task: Any) -> str:
    return f"{type(task).get_name()} ({task.id[:12]})"


class Task(LoadableTask[T], Generic[T]):
    """A task with a typed output in the content-addressed store.

    Subclass `sd.Task[T]`, declare parameters as fields, and implement `run()`:
    save the value with `self.target().save(value)` or simply return it.
    """

    __stardag_abstract__: ClassVar[bool] = True
    __stardag_output_type__: ClassVar[Any] = Any
    __stardag_serializer__: ClassVar[_serialize.Serializer] = _serialize.PickleSerializer()
    __stardag_validators__: ClassVar[tuple[Any, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _warn_relpath(cls)
        output_type = _output_type_of(cls)
        if output_type is not None:
            cls.__stardag_output_type__ = output_type
            cls.__stardag_serializer__ = _serialize.serializer_for(output_type)
            cls.__stardag_validators__ = validators_of(output_type)

    @property
    def _target_root_key(self) -> str:
        """The target root key this task's output goes to (override to change it)."""
        return _config.DEFAULT_TARGET_ROOT_KEY

    def target(self) -> Output[T]:
        """The task's output in the store."""
        return Output(self)

    def output(self) -> Output[T]:
        """Alias of `target()` (the older spelling)."""
        return Output(self)

    def complete(self) -> bool:
        """Whether the output is in the store (record and blob)."""
        return Output(self).exists()

    def load(self) -> T:
        """The task's output value."""
        return Output(self).load()

    def _save(self, value: T) -> ActionRecord:
        return Output(self).save(value)


RELPATH_OPTIONS = (
    "_relpath",
    "_relpath_base",
    "_relpath_extra",
    "_relpath_filename",
    "_relpath_extension",
)


class RelpathIgnoredWarning(UserWarning):
    """A task class sets the released stardag's output path options, which do nothing here."""


def _warn_relpath(cls: type) -> None:
    """Say once per class that path options are ignored: outputs live at content addresses."""
    found = [name for name in RELPATH_OPTIONS if name in cls.__dict__]
    if found:
        warnings.warn(
            f"{cls.__qualname__} sets {', '.join(found)}, which stardag ignores: a task's "
            "output is stored by its content's digest, not at a path built from its name "
            "(to write a file at a path of your choosing, use sd.TargetTask with "
            "sd.get_file_target)",
            RelpathIgnoredWarning,
            stacklevel=3,
        )


def _output_type_of(cls: type) -> Any:
    for klass in cls.__mro__:
        meta = getattr(klass, "__pydantic_generic_metadata__", None)
        if not meta or not meta["args"] or meta["origin"] is None:
            continue
        if isinstance(meta["origin"], type) and issubclass(meta["origin"], Task):
            first = meta["args"][0]
            return None if isinstance(first, TypeVar) else first
    return None


AutoTask = Task
