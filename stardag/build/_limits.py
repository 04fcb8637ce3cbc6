"""Concurrency limits inside one build, honoured by every executor.

`ConcurrencyConfig(limits={"db": 2}, key_selector=..., max_concurrent_tasks=8)`:
a task takes one slot of each named limit its key selector returns (and one of
the overall cap) before it is handed to any executor, and gives them back when
it finishes or while it waits on its own dynamic dependencies (holding them
then could deadlock a tight limit). The engine admits tasks here, under its
lock; waiting tasks go in first-come order, a later one passing only when an
earlier one does not fit.

Invariant: at no moment do more tasks hold a limit's slots than the limit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from stardag._errors import ConcurrencyLimitError
from stardag.task._base import BaseTask

KeySelector: TypeAlias = Callable[[BaseTask], "str | Sequence[str] | None"]
ConcurrencyKeySelector: TypeAlias = KeySelector  # stardag 0.28's name


@dataclass
class ConcurrencyConfig:
    """Named limits on how many tasks of a build run at once, on any executor.

    Args:
        limits: `{name: n}`: at most `n` tasks that name the limit run at once.
        key_selector: the limit names a task counts against (a name, names, or None).
        max_concurrent_tasks: at most this many tasks run at once in the build.
    """

    limits: dict[str, int] = field(default_factory=dict)
    key_selector: KeySelector | None = None
    max_concurrent_tasks: int | None = None

    def __post_init__(self) -> None:
        for name, value in self.limits.items():
            if value < 1:
                raise ConcurrencyLimitError(f"concurrency limit {name!r} must be >= 1, not {value}")
        if self.max_concurrent_tasks is not None and self.max_concurrent_tasks < 1:
            raise ConcurrencyLimitError(
                f"max_concurrent_tasks must be >= 1, not {self.max_concurrent_tasks}"
            )


class Limiter:
    """Slots of one build's limits; every method is called under the engine's lock."""

    def __init__(self, config: ConcurrencyConfig) -> None:
        self.config = config
        self.used: dict[str, int] = dict.fromkeys(config.limits, 0)
        self.running = 0
        self.keys: dict[str, tuple[str, ...]] = {}  # task id -> limit names
        self.holding: set[str] = set()
        self.waiting: deque[tuple[str, Callable[[], Any]]] = deque()

    def check(self, task: BaseTask) -> None:
        """Work out the task's limit names; `ConcurrencyLimitError` if one is unknown."""
        selector = self.config.key_selector
        raw = selector(task) if selector is not None else None
        names = (raw,) if isinstance(raw, str) else tuple(raw or ())
        for name in names:
            if name not in self.used:
                raise ConcurrencyLimitError(
                    f"task {type(task).get_name()} ({task.id[:12]}) counts against concurrency "
                    f"limit {name!r}, which ConcurrencyConfig.limits does not define "
                    f"(defined: {sorted(self.used)})",
                    task_id=task.id,
                )
        self.keys[task.id] = tuple(sorted(set(names)))

    def admit(self, task_id: str, go: Callable[[], Any]) -> bool:
        """Take the task's slots and return True, or queue `go` for when they free up."""
        if self._fits(task_id):
            self._take(task_id)
            return True
        self.waiting.append((task_id, go))
        return False

    def release(self, task_id: str) -> None:
        """Give the task's slots back (if it holds them) and start what now fits."""
        if task_id not in self.holding:
            return
        self.holding.discard(task_id)
        self.running -= 1
        for name in self.keys.get(task_id, ()):
            self.used[name] -= 1
        self._wake()

    def _wake(self) -> None:
        ready = []
        for item in list(self.waiting):
            task_id, go = item
            if self._fits(task_id):
                self._take(task_id)
                self.waiting.remove(item)
                ready.append(go)
            if self._full():
                break
        for go in ready:
            go()

    def _full(self) -> bool:
        cap = self.config.max_concurrent_tasks
        return cap is not None and self.running >= cap

    def _fits(self, task_id: str) -> bool:
        if self._full():
            return False
        limits = self.config.limits
        return all(self.used[name] < limits[name] for name in self.keys.get(task_id, ()))

    def _take(self, task_id: str) -> None:
        self.holding.add(task_id)
        self.running += 1
        for name in self.keys.get(task_id, ()):
            self.used[name] += 1
