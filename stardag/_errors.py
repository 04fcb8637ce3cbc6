"""Every error Stardag raises, in one tree.

```
StardagError
├── TaskDefinitionError          a task class or function is malformed
│   ├── MissingReturnAnnotationError
│   └── TaskClassConflictError   two classes claim one (namespace, name)
├── CanonicalEncodingError       a parameter value has no canonical encoding
├── DependencyCycleError         the DAG has a cycle
├── SerializationError           a value cannot be serialized or deserialized
├── StoreError                   the content-addressed store failed
│   ├── BlobNotFoundError        no blob under a digest
│   ├── CorruptBlobError         a blob's bytes do not match its digest
│   ├── InvalidRecordError       an action record is malformed
│   ├── InvalidKeyError          a digest or task id that is not 64 lowercase hex
│   └── BackendError             the storage backend failed (unreachable, denied, full)
├── TargetNotFoundError          a task's output does not exist (not built yet)
├── ConfigError                  a Stardag setting (an environment variable) is malformed
│   └── UnknownRootKeyError      a target root key that is not configured
├── TaskFailedError              a task raised while running (wraps its error)
│   └── BuildInterruptedError    the build was interrupted (Ctrl-C) before the task finished
├── ExecutorError                a task cannot be run where its executor would run it
│   ├── TaskPicklingError        a task cannot be pickled to go to another process
│   ├── WorkerImportError        a worker cannot import a task's code
│   ├── WorkerLostError          the worker running a task died (killed, out of memory)
│   └── RemoteTaskError          a task failed on a worker with an error that cannot travel
├── ConcurrencyLimitError        a concurrency limit that is invalid or not defined
├── OptionalDependencyError      a value's type needs a package that is not installed
├── RegistryError                the registry cannot be opened, written or queried
│   ├── RegistryLockedError      still locked by another process after the retries
│   ├── RegistryUnwritableError  read-only, full or unreachable (build fails first)
│   ├── RegistryUnreachableError the registry's server cannot be reached (down, wrong address)
│   ├── RegistrySchemaError      made by a newer schema, or not a registry at all
│   ├── RegistryCorruptError     the registry's database file is damaged
│   ├── TaskNotFoundError        no recorded task matches an id, prefix or digest
│   ├── AmbiguousTaskIdError     a prefix matches several recorded tasks
│   └── RegistryNotFoundError    no registry exists there yet (nothing was built)
├── TaskReferenceError           a TASK argument is not an id, a prefix or `module:attr`
├── TaskImportError              a recorded task's code cannot be imported to rebuild it
├── NoGcRootsError               gc was given no roots, so everything would be garbage
└── RemoteError                  a remote cache is misconfigured, unreachable or holds bad data
    ├── UnknownRemoteError       no remote is configured under a name
    ├── UntrustedRemoteError     a pickled output from a remote not marked trusted
    ├── UntrustedRecordError     a remote's record not signed by a key you trust
    └── SigningKeyError          a signing or public key that is malformed or unreadable
```

Bad parameters are Pydantic's `ValidationError`, as users of Pydantic expect.
Each error carries what it is about (`.task_id`, `.digest`, `.field`).
"""

from __future__ import annotations


class StardagError(Exception):
    """Base class of every error Stardag raises."""


class TaskDefinitionError(StardagError, TypeError):
    """A task class or decorated function is malformed."""


class TaskRehydrationError(StardagError):
    """A task could not be rebuilt from its JSON body (`sd.task_from_registry_data`)."""


class UnstableSerializationError(StardagError):
    """A task's JSON body does not survive a round trip (`sd.check_serialization_stability`)."""


class TaskVersionMismatchError(StardagError, ValueError):
    """A task's `version` is not its class's current `__version__`, so it must not run.

    Also a `ValueError`, which is what the released stardag raised for it.
    """


class MissingReturnAnnotationError(TaskDefinitionError):
    """An `@sd.task` function has no return annotation, so no serializer can be chosen."""


class TaskClassConflictError(TaskDefinitionError):
    """Two different task classes claim the same namespace and name."""


class CanonicalEncodingError(StardagError, TypeError):
    """A parameter value has no canonical encoding, so no stable id can be derived."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BuildOptionError(StardagError, ValueError):
    """A build was asked for an option it does not know or cannot honour (nothing ran)."""


class DependencyCycleError(StardagError, RuntimeError):
    """The requested tasks' dependencies form a cycle (found before anything runs).

    Also a `RuntimeError`, which is what the released stardag raised for a cycle.
    """

    def __init__(self, message: str, *, cycle: list[str]) -> None:
        super().__init__(message)
        self.cycle = cycle


class SerializationError(StardagError):
    """A task's value cannot be serialized, or stored bytes cannot be deserialized."""

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id


class StoreError(StardagError):
    """The content-addressed store could not complete an operation."""

    def __init__(
        self, message: str, *, digest: str | None = None, task_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.digest = digest
        self.task_id = task_id


class BlobNotFoundError(StoreError, FileNotFoundError):
    """No blob is stored under the digest."""


class CorruptBlobError(StoreError):
    """A blob's bytes do not hash to its digest, or its frame is damaged (`.why`: how)."""

    def __init__(
        self,
        message: str,
        *,
        digest: str | None = None,
        task_id: str | None = None,
        why: str = "",
    ) -> None:
        super().__init__(message, digest=digest, task_id=task_id)
        self.why = why or message


class InvalidRecordError(StoreError):
    """An action record is malformed or does not belong to its task id."""


class TargetNotFoundError(StardagError, FileNotFoundError):
    """A task's output does not exist yet: build the task first."""

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id


class ConfigError(StardagError):
    """A Stardag setting is malformed (such as `STARDAG_TARGET_ROOTS` that is not JSON)."""


class UnknownRootKeyError(ConfigError, KeyError):
    """A target root key is not configured."""

    def __init__(self, key: str, known: list[str]) -> None:
        super().__init__(key)
        self.key = key
        self.known = known

    def __str__(self) -> str:
        return (
            f"unknown target root key {self.key!r}; configured keys: {sorted(self.known)}. "
            f"Set STARDAG_TARGET_ROOTS__{self.key.upper()}=<path or URL> or add it to "
            "STARDAG_TARGET_ROOTS (JSON)."
        )


class TaskFailedError(StardagError):
    """A task raised while running; `__cause__` is its own exception."""

    def __init__(self, message: str, *, task_id: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class BuildInterruptedError(TaskFailedError):
    """The build was interrupted (Ctrl-C) before the task finished: it did not fail."""


class ExecutorError(StardagError):
    """A task cannot be run where its executor would run it; `.task_id` names it (or None)."""

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id


class TaskPicklingError(ExecutorError):
    """A task (or a parameter of it) cannot be pickled to go to another process."""


class WorkerImportError(ExecutorError, ImportError):
    """A worker cannot import the code of a task (checked before any task runs)."""


class WorkerLostError(ExecutorError):
    """The worker process running a task died (killed, out of memory); nothing was published."""


class RemoteTaskError(ExecutorError):
    """A task failed on a worker with an exception that cannot be sent back as itself."""


class ConcurrencyLimitError(StardagError, ValueError):
    """A concurrency limit is below 1, or a task counts against a limit not defined."""

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id


class RegistryError(StardagError):
    """The registry cannot be opened, written or queried; `.url` says which one."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class RegistryLockedError(RegistryError):
    """The registry stayed locked by other writers through every retry."""


class RegistryUnwritableError(RegistryError):
    """The registry cannot be written (read-only, full disk, missing directory)."""


class RegistryUnreachableError(RegistryError):
    """The registry's database server cannot be reached: down, refusing, or a wrong address.

    `.url` is the URL without its password.
    """


class RegistryCorruptError(RegistryError):
    """The registry's database file is damaged (not a database, or malformed pages)."""


class RegistrySchemaError(RegistryError):
    """The registry was made by a newer schema than this Stardag knows, or is not one."""


class TaskNotFoundError(RegistryError, LookupError):
    """No recorded task matches a task id, id prefix or output digest."""

    def __init__(self, message: str, *, query: str) -> None:
        super().__init__(message)
        self.query = query


class AmbiguousTaskIdError(RegistryError, LookupError):
    """A task id prefix matches more than one recorded task; `.candidates` lists them."""

    def __init__(self, message: str, *, query: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.query = query
        self.candidates = candidates


class InvalidKeyError(StoreError, ValueError):
    """A digest or task id is not 64 lowercase hex characters, so it names no store path."""


class BackendError(StoreError, OSError):
    """The storage backend failed an operation: unreachable, timed out, denied or full."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        digest: str | None = None,
        task_id: str | None = None,
    ) -> None:
        super().__init__(message, digest=digest, task_id=task_id)
        self.url = url


class OptionalDependencyError(StardagError, ImportError):
    """A value's type needs an optional package that is not installed (`.package`)."""

    def __init__(self, message: str, *, package: str) -> None:
        super().__init__(message)
        self.package = package


class RegistryNotFoundError(RegistryError):
    """No registry exists at the URL yet; commands that only read it do not create one."""


class TaskReferenceError(StardagError, ValueError):
    """A task was named by something that is not a task id, an id prefix or `module:attr`.

    Also raised when `module:attr` cannot be imported or does not name a task.
    """

    def __init__(self, message: str, *, reference: str) -> None:
        super().__init__(message)
        self.reference = reference


class TaskImportError(StardagError, ImportError):
    """A recorded task cannot be rebuilt from its spec: its code is missing or changed."""

    def __init__(self, message: str, *, task_id: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class NoGcRootsError(StardagError, ValueError):
    """gc was given no kind of root (pins, recent builds, named tasks), so it refuses."""


class RemoteError(StardagError):
    """A remote cache is misconfigured, unreachable, or holds data that fails validation."""

    def __init__(
        self,
        message: str,
        *,
        remote: str | None = None,
        task_id: str | None = None,
        digest: str | None = None,
    ) -> None:
        super().__init__(message)
        self.remote = remote
        self.task_id = task_id
        self.digest = digest


class UnknownRemoteError(RemoteError, KeyError):
    """No remote is configured under a name (`stardag remote add NAME URL` adds one)."""

    def __str__(self) -> str:
        return str(self.args[0])


class UntrustedRemoteError(RemoteError):
    """A remote's output is pickled and the remote is not trusted: unpickling runs code."""


class UntrustedRecordError(RemoteError):
    """A remote's action record is unsigned, or not signed by a key this machine trusts."""


class SigningKeyError(RemoteError):
    """A signing key or public key is malformed or unreadable (`stardag remote key`)."""
