"""Stardag: declarative, composable DAGs of Pydantic tasks over a content-addressed store.

```python
import stardag as sd

@sd.task
def get_range(limit: int) -> list[int]:
    return list(range(limit))

@sd.task
def get_sum(integers: sd.Depends[list[int]]) -> int:
    return sum(integers)

sum_task = get_sum(integers=get_range(limit=4))
sd.build(sum_task)
assert sum_task.load() == 6
```
"""

import typing as _typing

from stardag._errors import (
    AmbiguousTaskIdError,
    BackendError,
    BlobNotFoundError,
    CanonicalEncodingError,
    CorruptBlobError,
    DependencyCycleError,
    InvalidKeyError,
    InvalidRecordError,
    MissingReturnAnnotationError,
    NoGcRootsError,
    OptionalDependencyError,
    RegistryError,
    RegistryLockedError,
    RegistryNotFoundError,
    RegistrySchemaError,
    RegistryUnreachableError,
    RegistryUnwritableError,
    RemoteError,
    SerializationError,
    StardagError,
    StoreError,
    TargetNotFoundError,
    TaskClassConflictError,
    TaskDefinitionError,
    TaskFailedError,
    TaskImportError,
    TaskNotFoundError,
    TaskReferenceError,
    UnknownRemoteError,
    UnknownRootKeyError,
    UntrustedRemoteError,
)
from stardag._version import __version__
from stardag.build import (
    BuildFailedError,
    BuildSummary,
    FailMode,
    build,
    build_aio,
    build_sequential,
    build_sequential_aio,
)
from stardag.build._events import BuildEvent, BuildListener, EventKind
from stardag.build._write_through import WriteThrough
from stardag.remote._sharing import PullReport, PushReport, pull, push
from stardag.store._directory import Directory
from stardag.task._base import (
    BaseTask,
    LoadableTask,
    StardagField,
    TargetTask,
    TaskStruct,
    flatten_task_struct,
)
from stardag.task._classes import auto_namespace, namespace
from stardag.task._decorator import FunctionTask, task
from stardag.task._fields import Depends, SubClass, TaskLoads
from stardag.task._stored import AutoTask, Output, Task
from stardag.task._target import FileTarget, LocalFileTarget, get_file_target, get_target

if _typing.TYPE_CHECKING:
    from stardag import registry
    from stardag.maintenance._audit import audit

__all__ = [
    "AmbiguousTaskIdError",
    "AutoTask",
    "BackendError",
    "BaseTask",
    "BlobNotFoundError",
    "BuildEvent",
    "BuildFailedError",
    "BuildListener",
    "BuildSummary",
    "CanonicalEncodingError",
    "CorruptBlobError",
    "DependencyCycleError",
    "Depends",
    "Directory",
    "EventKind",
    "FailMode",
    "FileTarget",
    "FunctionTask",
    "InvalidKeyError",
    "InvalidRecordError",
    "LoadableTask",
    "LocalFileTarget",
    "MissingReturnAnnotationError",
    "NoGcRootsError",
    "OptionalDependencyError",
    "Output",
    "PullReport",
    "PushReport",
    "RegistryError",
    "RegistryLockedError",
    "RegistryNotFoundError",
    "RegistrySchemaError",
    "RegistryUnreachableError",
    "RegistryUnwritableError",
    "RemoteError",
    "SerializationError",
    "StardagError",
    "StardagField",
    "StoreError",
    "SubClass",
    "TargetNotFoundError",
    "TargetTask",
    "Task",
    "TaskClassConflictError",
    "TaskDefinitionError",
    "TaskFailedError",
    "TaskImportError",
    "TaskLoads",
    "TaskNotFoundError",
    "TaskReferenceError",
    "TaskStruct",
    "UnknownRemoteError",
    "UnknownRootKeyError",
    "UntrustedRemoteError",
    "WriteThrough",
    "__version__",
    "audit",
    "auto_namespace",
    "build",
    "build_aio",
    "build_sequential",
    "build_sequential_aio",
    "flatten_task_struct",
    "get_file_target",
    "get_target",
    "namespace",
    "pull",
    "push",
    "registry",
    "task",
]


def __getattr__(name: str) -> _typing.Any:
    # `sd.registry` imports SQLAlchemy, so it is imported on first use: `import
    # stardag` stays fast for code that never asks the registry anything.
    if name == "registry":
        import importlib

        return importlib.import_module("stardag.registry")
    if name == "audit":  # records verdicts in the registry: imported on first use too
        from stardag.maintenance._audit import audit

        return audit
    raise AttributeError(f"module 'stardag' has no attribute {name!r}")
