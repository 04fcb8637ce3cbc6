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
    BuildInterruptedError,
    BuildOptionError,
    CanonicalEncodingError,
    ConcurrencyLimitError,
    ConfigError,
    CorruptBlobError,
    DependencyCycleError,
    ExecutorError,
    InvalidKeyError,
    InvalidRecordError,
    MissingReturnAnnotationError,
    NoGcRootsError,
    OptionalDependencyError,
    RegistryCorruptError,
    RegistryError,
    RegistryLockedError,
    RegistryNotFoundError,
    RegistrySchemaError,
    RegistryUnreachableError,
    RegistryUnwritableError,
    RemoteError,
    RemoteTaskError,
    SerializationError,
    SigningKeyError,
    StardagError,
    StoreError,
    TargetNotFoundError,
    TaskClassConflictError,
    TaskDefinitionError,
    TaskFailedError,
    TaskImportError,
    TaskNotFoundError,
    TaskPicklingError,
    TaskReferenceError,
    TaskRehydrationError,
    TaskVersionMismatchError,
    UnknownRemoteError,
    UnknownRootKeyError,
    UnstableSerializationError,
    UntrustedRecordError,
    UntrustedRemoteError,
    WorkerImportError,
    WorkerLostError,
)
from stardag._version import __version__
from stardag.build import (
    BuildFailedError,
    BuildSummary,
    ClaimConfig,
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
from stardag.task._alias import AliasedMetadata, AliasTask
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
from stardag.task._polymorphic import Polymorphic, PolymorphicRoot, StardagBaseModel
from stardag.task._rehydrate import check_serialization_stability, task_from_registry_data
from stardag.task._sets import HashableSet, HashSafeSetSerializer
from stardag.task._stored import AutoTask, Output, Task
from stardag.task._target import (
    DirectoryTarget,
    FileTarget,
    InMemoryFileTarget,
    LocalFileTarget,
    get_directory_target,
    get_file_target,
    get_target,
)
from stardag.task._validate import LoadValidator

FileSystemTarget: _typing.TypeAlias = FileTarget | DirectoryTarget
"""A file or a directory target (`stardag.target.FileSystemTarget`)."""

if _typing.TYPE_CHECKING:
    from stardag import registry
    from stardag.maintenance._audit import audit

__all__ = [
    "AliasTask",
    "AliasedMetadata",
    "AmbiguousTaskIdError",
    "AutoTask",
    "BackendError",
    "BaseTask",
    "BlobNotFoundError",
    "BuildEvent",
    "BuildFailedError",
    "BuildInterruptedError",
    "BuildListener",
    "BuildOptionError",
    "BuildSummary",
    "CanonicalEncodingError",
    "ClaimConfig",
    "ConcurrencyLimitError",
    "ConfigError",
    "CorruptBlobError",
    "DependencyCycleError",
    "Depends",
    "Directory",
    "DirectoryTarget",
    "EventKind",
    "ExecutorError",
    "FailMode",
    "FileSystemTarget",
    "FileTarget",
    "FunctionTask",
    "HashSafeSetSerializer",
    "HashableSet",
    "InMemoryFileTarget",
    "InvalidKeyError",
    "InvalidRecordError",
    "LoadValidator",
    "LoadableTask",
    "LocalFileTarget",
    "MissingReturnAnnotationError",
    "NoGcRootsError",
    "OptionalDependencyError",
    "Output",
    "Polymorphic",
    "PolymorphicRoot",
    "PullReport",
    "PushReport",
    "RegistryCorruptError",
    "RegistryError",
    "RegistryLockedError",
    "RegistryNotFoundError",
    "RegistrySchemaError",
    "RegistryUnreachableError",
    "RegistryUnwritableError",
    "RemoteError",
    "RemoteTaskError",
    "SerializationError",
    "SigningKeyError",
    "StardagBaseModel",
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
    "TaskPicklingError",
    "TaskReferenceError",
    "TaskRehydrationError",
    "TaskStruct",
    "TaskVersionMismatchError",
    "UnknownRemoteError",
    "UnknownRootKeyError",
    "UnstableSerializationError",
    "UntrustedRecordError",
    "UntrustedRemoteError",
    "WorkerImportError",
    "WorkerLostError",
    "WriteThrough",
    "__version__",
    "audit",
    "auto_namespace",
    "build",
    "build_aio",
    "build_sequential",
    "build_sequential_aio",
    "check_serialization_stability",
    "flatten_task_struct",
    "get_directory_target",
    "get_file_target",
    "get_target",
    "namespace",
    "pull",
    "push",
    "registry",
    "task",
    "task_from_registry_data",
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
