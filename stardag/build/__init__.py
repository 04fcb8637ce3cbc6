"""The build: walk the DAG from the requested tasks and run what is missing, bottom-up.

One engine (`_Build`) behind four entry points:

- `build(tasks)`: concurrent in this process; async tasks on the event loop,
  sync tasks on a thread pool (`max_workers`).
- `build_aio(tasks)`: the same, awaited inside your event loop.
- `build_sequential(tasks)` / `build_sequential_aio(tasks)`: one task at a time.

Makefile semantics: a complete task is not run and its upstream is not walked;
each task id runs at most once per build. A cycle is an error before anything
runs. `run()` may yield tasks (dynamic dependencies), built before it resumes.
"""

from typing import TYPE_CHECKING, Any

from stardag.build._claim_config import ClaimConfig
from stardag.build._context import BuildContext, get_current_build_context, get_current_build_id
from stardag.build._events import BuildEvent, BuildListener, EventKind
from stardag.build._executor import (
    RunPlace,
    TaskDone,
    TaskExecutionError,
    TaskExecutor,
    TaskFailed,
    TaskOutcome,
    TaskYielded,
)
from stardag.build._labels import labelled
from stardag.build._limits import ConcurrencyConfig, ConcurrencyKeySelector
from stardag.build._routing import InProcessTaskExecutor, RoutedTaskExecutor
from stardag.build._run import (
    DEFAULT_CLAIMS,
    DEFAULT_REGISTRY,
    build,
    build_aio,
    build_sequential,
    build_sequential_aio,
)
from stardag.build._summary import (
    BuildExitStatus,
    BuildFailed,
    BuildFailedError,
    BuildStopped,
    BuildSummary,
    FailMode,
    TaskCount,
)

if TYPE_CHECKING:
    from stardag.build._process import ProcessPoolTaskExecutor

TaskExecutorABC = TaskExecutor  # stardag 0.28's name for the executor base class

__all__ = [
    "BuildContext",
    "BuildEvent",
    "BuildExitStatus",
    "BuildFailed",
    "BuildFailedError",
    "BuildListener",
    "BuildStopped",
    "BuildSummary",
    "ClaimConfig",
    "ConcurrencyConfig",
    "ConcurrencyKeySelector",
    "DEFAULT_CLAIMS",
    "DEFAULT_REGISTRY",
    "EventKind",
    "FailMode",
    "InProcessTaskExecutor",
    "ProcessPoolTaskExecutor",
    "RoutedTaskExecutor",
    "RunPlace",
    "TaskCount",
    "TaskDone",
    "TaskExecutionError",
    "TaskExecutor",
    "TaskExecutorABC",
    "TaskFailed",
    "TaskOutcome",
    "TaskYielded",
    "build",
    "build_aio",
    "build_sequential",
    "build_sequential_aio",
    "get_current_build_context",
    "get_current_build_id",
    "labelled",
]


def __getattr__(name: str) -> Any:
    # The process pool imports multiprocessing: only when asked for (`import stardag` stays fast).
    if name == "ProcessPoolTaskExecutor":
        from stardag.build._process import ProcessPoolTaskExecutor

        return ProcessPoolTaskExecutor
    raise AttributeError(f"module 'stardag.build' has no attribute {name!r}")
