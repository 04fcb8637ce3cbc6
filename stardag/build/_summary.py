"""What a build did: `FailMode`, `BuildSummary`, `TaskCount` and `BuildFailedError`.

Shared by the engine (which fills a summary as tasks finish) and the entry points
(which return it). The invariant: one set of counts. `TaskCount` holds them; the
summary's own count attributes (`ran`, `already_complete`, ...) read and write the
same `TaskCount`, so the released stardag's names (`task_count.succeeded`,
`task_count.previously_completed`) and ours can never disagree.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stardag._errors import StardagError

if TYPE_CHECKING:
    from stardag.task._base import BaseTask


class FailMode(str, enum.Enum):
    """What a build does when a task fails."""

    FAIL_FAST = "fail_fast"  # start nothing new, re-raise the task's own exception
    CONTINUE = "continue"  # build every branch that does not depend on the failure


class BuildExitStatus(str, enum.Enum):
    """How a build ended (the released stardag's statuses).

    Ours ends in `SUCCESS` or `FAILURE`; `EXIT_EARLY` and `STOPPED` belong to the
    released stardag's registry claims and are kept so code comparing against them runs.
    """

    SUCCESS = "success"
    FAILURE = "failure"
    EXIT_EARLY = "exit_early"
    STOPPED = "stopped"


@dataclass
class TaskCount:
    """How many tasks the build found and what became of them.

    Attributes:
        discovered: every task the build walked to (complete ones included).
        previously_completed: already complete when found (ours: `already_complete`).
        succeeded: ran and completed in this build (ours: `ran`).
        failed: raised, or ran without completing.
        cancelled: interrupted by Ctrl-C: never started, or abandoned while running
            (ours: `interrupted`).
        skipped: never started, because an upstream failed or a fail-fast build stopped.
    """

    discovered: int = 0
    previously_completed: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0

    @property
    def pending(self) -> int:
        """Discovered tasks with no outcome yet."""
        return (
            self.discovered
            - self.previously_completed
            - self.succeeded
            - self.failed
            - self.cancelled
            - self.skipped
        )


class BuildFailedError(StardagError):
    """A build failed; `.summary` says which tasks and why.

    Raised by `BuildSummary.raise_on_failure()`. `sd.build.BuildFailed` is the
    released stardag's name for it.
    """

    def __init__(self, summary: BuildSummary) -> None:
        lines = [f"{len(summary.failures)} task(s) failed:"]
        for task_id, error in summary.failures.items():
            lines.append(f"  {summary.names.get(task_id, '?')} ({task_id[:12]}): {error!r}")
        if not summary.failures and summary.error is not None:
            lines = [f"build failed: {summary.error!r}"]
        super().__init__("\n".join(lines))
        self.summary = summary


BuildFailed = BuildFailedError


class BuildStopped(StardagError):
    """The released stardag's error for a build its registry stopped; ours never raises it."""


@dataclass(init=False)
class BuildSummary:
    """What a build did: status, counts, and the errors of failed tasks by task id.

    Attributes:
        build_id: this build's id (hex), as recorded in the registry.
        task_count: the counts (`discovered`, `previously_completed`, `succeeded`,
            `failed`, `cancelled`, `skipped`); `discovered`, `already_complete`,
            `ran`, `failed` and `skipped` read the same numbers.
        remote_hits: of the already complete tasks, those fetched from a remote.
        failures: the exception of every failed task, by task id.
        names: the task name of each failed task, by task id (for messages).
        error: the first failure's exception (None when nothing failed).
        failed_task: the first task that failed.
    """

    build_id: str
    task_count: TaskCount
    remote_hits: int
    failures: dict[str, BaseException]
    names: dict[str, str]
    started: float
    ended: float | None
    error: BaseException | None
    failed_task: BaseTask | None

    def __init__(
        self,
        build_id: str,
        *,
        task_count: TaskCount | None = None,
        remote_hits: int = 0,
        failures: dict[str, BaseException] | None = None,
        names: dict[str, str] | None = None,
        started: float | None = None,
        ended: float | None = None,
        error: BaseException | None = None,
        failed_task: BaseTask | None = None,
    ) -> None:
        self.build_id = build_id
        self.task_count = task_count if task_count is not None else TaskCount()
        self.remote_hits = remote_hits
        self.failures = failures if failures is not None else {}
        self.names = names if names is not None else {}
        self.started = time.time() if started is None else started
        self.ended = ended
        self.error = error
        self.failed_task = failed_task

    @property
    def discovered(self) -> int:
        """Every task the build walked to."""
        return self.task_count.discovered

    @discovered.setter
    def discovered(self, value: int) -> None:
        self.task_count.discovered = value

    @property
    def already_complete(self) -> int:
        """Tasks complete before the build (`task_count.previously_completed`)."""
        return self.task_count.previously_completed

    @already_complete.setter
    def already_complete(self, value: int) -> None:
        self.task_count.previously_completed = value

    @property
    def ran(self) -> int:
        """Tasks run to completion in this build (`task_count.succeeded`)."""
        return self.task_count.succeeded

    @ran.setter
    def ran(self, value: int) -> None:
        self.task_count.succeeded = value

    @property
    def failed(self) -> int:
        """Tasks that failed."""
        return self.task_count.failed

    @failed.setter
    def failed(self, value: int) -> None:
        self.task_count.failed = value

    @property
    def skipped(self) -> int:
        """Tasks never started because of a failure."""
        return self.task_count.skipped

    @skipped.setter
    def skipped(self, value: int) -> None:
        self.task_count.skipped = value

    @property
    def interrupted(self) -> int:
        """Tasks not run, or abandoned, because the build was interrupted (Ctrl-C).

        The same number as `task_count.cancelled`.
        """
        return self.task_count.cancelled

    @interrupted.setter
    def interrupted(self, value: int) -> None:
        self.task_count.cancelled = value

    @property
    def status(self) -> BuildExitStatus:
        """`SUCCESS`, or `FAILURE` when a task failed or was skipped, or the build raised."""
        if self.ok and self.error is None:
            return BuildExitStatus.SUCCESS
        return BuildExitStatus.FAILURE

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return (
            self.failed == 0 and self.skipped == 0 and self.interrupted == 0 and self.error is None
        )

    @property
    def duration(self) -> float:
        """Seconds from start to end (or to now while running)."""
        return (self.ended or time.time()) - self.started

    def raise_on_failure(self) -> None:
        """Raise `BuildFailedError` (alias `BuildFailed`) if the build failed."""
        if self.status is not BuildExitStatus.SUCCESS:
            raise BuildFailedError(self)

    def __str__(self) -> str:
        return (
            f"{self.discovered} discovered, {self.already_complete} already complete"
            + (f" ({self.remote_hits} from a remote)" if self.remote_hits else "")
            + ", "
            f"{self.ran} ran, {self.failed} failed, {self.skipped} skipped"
            + (f", {self.interrupted} interrupted" if self.interrupted else "")
            + f" in {self.duration:.2f}s"
        )
