"""Build events: what a build tells its listeners (the registry, progress displays).

One small interface: a listener is anything with `handle(event)`. Events are
delivered one at a time (under the engine's lock), in order, one per state
change of the build or of a task; they may come from worker threads, so a
listener that keeps state across builds guards it with its own lock.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from stardag.build._executor import RunPlace
    from stardag.store._store import ActionRecord
    from stardag.task._base import BaseTask


class EventKind(str, enum.Enum):
    """What happened."""

    BUILD_STARTED = "build_started"
    BUILD_ENDED = "build_ended"
    TASK_CACHED = "task_cached"  # complete before the build touched it
    TASK_STARTED = "task_started"
    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    TASK_SKIPPED = "task_skipped"  # not run because something it needs failed
    TASK_INTERRUPTED = "task_interrupted"  # not run, or abandoned, after Ctrl-C


@dataclass(slots=True)
class BuildEvent:
    """One state change. `task` is set for task events, `summary` for BUILD_ENDED.

    Slotted: a build may hold thousands of events at once (the recorder's buffer).
    Every listener gets the same event: treat it as read-only. (It is not frozen: a
    frozen dataclass sets each of its 13 fields through `object.__setattr__`, which
    made an event cost about five times as much to create, twice per task.)
    """

    kind: EventKind
    build_id: str
    time: float = field(default_factory=time.time)
    task: BaseTask | None = None
    requires: tuple[str, ...] = ()  # static dependency ids (TASK_STARTED)
    dynamic: tuple[str, ...] = ()  # dynamic dependency ids (TASK_COMPLETED, TASK_FAILED)
    record: ActionRecord | None = None  # the output written (TASK_COMPLETED of a sd.Task)
    error: BaseException | None = None  # TASK_FAILED (and TASK_INTERRUPTED by the task)
    roots: tuple[BaseTask, ...] = ()  # BUILD_STARTED
    summary: Any = None  # BuildSummary, BUILD_ENDED
    total: int = 0  # tasks discovered so far in this build (every event)
    remote: str | None = None  # TASK_CACHED read through from this remote (URL), not local
    where: RunPlace | None = None  # TASK_COMPLETED/FAILED on an executor; None: in process


class BuildListener(Protocol):
    """Receives every event of a build."""

    def handle(self, event: BuildEvent) -> None:
        """React to one event; raising aborts the build."""
