"""What a build did: `FailMode`, `BuildSummary` and `BuildFailedError`.

Shared by the engine (which fills a summary as tasks finish) and the entry points
(which return it); one set of counts, filled in one place.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

from stardag._errors import StardagError


class FailMode(str, enum.Enum):
    """What a build does when a task fails."""

    FAIL_FAST = "fail_fast"  # start nothing new, re-raise the task's own exception
    CONTINUE = "continue"  # build every branch that does not depend on the failure


class BuildFailedError(StardagError):
    """Tasks failed in a `FailMode.CONTINUE` build; `.summary` says which and why."""

    def __init__(self, summary: BuildSummary) -> None:
        lines = [f"{len(summary.failures)} task(s) failed:"]
        for task_id, error in summary.failures.items():
            lines.append(f"  {summary.names.get(task_id, '?')} ({task_id[:12]}): {error!r}")
        super().__init__("\n".join(lines))
        self.summary = summary


@dataclass
class BuildSummary:
    """What a build did: counts, and the errors of failed tasks by task id."""

    build_id: str
    discovered: int = 0
    already_complete: int = 0
    remote_hits: int = 0  # of already_complete: fetched from a remote (read-through)
    ran: int = 0
    failed: int = 0
    skipped: int = 0
    failures: dict[str, BaseException] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    ended: float | None = None

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return self.failed == 0 and self.skipped == 0

    @property
    def duration(self) -> float:
        """Seconds from start to end (or to now while running)."""
        return (self.ended or time.time()) - self.started

    def __str__(self) -> str:
        return (
            f"{self.discovered} discovered, {self.already_complete} already complete"
            + (f" ({self.remote_hits} from a remote)" if self.remote_hits else "")
            + ", "
            f"{self.ran} ran, {self.failed} failed, {self.skipped} skipped "
            f"in {self.duration:.2f}s"
        )
