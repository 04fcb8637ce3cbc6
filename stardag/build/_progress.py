"""Build progress for people: a live display on a terminal, plain log lines otherwise.

`Progress` is a `BuildListener`: pass it to a build (`sd.build(task, progress=True)`
does) and it shows the total, how many are done, cached, running and failed, and the
names of the tasks running now. Without a terminal it prints one line per finished
task, which reads well in CI logs. Nothing shows until the first task event: a build
that stops before it touches a task (bad settings, a dependency cycle) leaves only
its error.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from stardag.build._events import BuildEvent, EventKind


class Progress:
    """A build listener that reports progress to a terminal or a log stream."""

    def __init__(self, stream: IO[str] | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.lock = threading.Lock()
        self.counts = {"cached": 0, "done": 0, "failed": 0, "skipped": 0, "interrupted": 0}
        self.running: dict[str, str] = {}
        self.total = 0
        self.started = time.monotonic()
        self._display: Any = None
        self._start: BuildEvent | None = None  # BUILD_STARTED, until a task event shows it

    def handle(self, event: BuildEvent) -> None:
        """Update the counts and the display for one event."""
        with self.lock:
            self.total = max(self.total, event.total)
            self._count(event)
            if event.kind is EventKind.BUILD_STARTED:
                self._start = event
                return
            if self._start is not None:
                if event.kind is EventKind.BUILD_ENDED:
                    return  # no task was touched: the build's error says it all
                self._show(self._start)
                self._start = None
            self._show(event)

    def _show(self, event: BuildEvent) -> None:
        if self.live:
            self._refresh(event)
        else:
            self._log(event)

    def _count(self, event: BuildEvent) -> None:
        kind, task = event.kind, event.task
        if task is None:
            return
        if kind is EventKind.TASK_CACHED:
            self.counts["cached"] += 1
        elif kind is EventKind.TASK_STARTED:
            self.running[task.id] = type(task).get_name()
        elif kind is EventKind.TASK_COMPLETED:
            self.running.pop(task.id, None)
            self.counts["done"] += 1
        elif kind is EventKind.TASK_FAILED:
            self.running.pop(task.id, None)
            self.counts["failed"] += 1
        elif kind is EventKind.TASK_SKIPPED:
            self.counts["skipped"] += 1
        elif kind is EventKind.TASK_INTERRUPTED:
            self.running.pop(task.id, None)
            self.counts["interrupted"] += 1

    def line(self) -> str:
        """One line summing up the build so far."""
        c = self.counts
        return (
            f"{c['done'] + c['cached']}/{self.total} complete: "
            f"{c['done']} done, {c['cached']} cached, {len(self.running)} running, "
            f"{c['failed']} failed, {c['skipped']} skipped"
            + (f", {c['interrupted']} interrupted" if c["interrupted"] else "")
            + " "
            f"({time.monotonic() - self.started:.1f}s)"
        )

    def _log(self, event: BuildEvent) -> None:
        task = event.task
        if event.kind is EventKind.BUILD_STARTED:
            names = ", ".join(type(t).get_name() for t in event.roots[:3])
            self._write(f"build {event.build_id[:8]}: {names}")
        elif event.kind is EventKind.TASK_COMPLETED and task is not None:
            self._write(f"  done    {type(task).get_name()} {task.id[:12]}  [{self.line()}]")
        elif event.kind is EventKind.TASK_FAILED and task is not None:
            self._write(f"  FAILED  {type(task).get_name()} {task.id[:12]}: {event.error!r}")
        elif event.kind is EventKind.BUILD_ENDED:
            self._write(f"build {event.build_id[:8]} ended: {self.line()}")

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _refresh(self, event: BuildEvent) -> None:
        if event.kind is EventKind.BUILD_STARTED:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream)
            self._display = Live(self._render(), console=console, refresh_per_second=8)
            self._display.start()
        elif self._display is not None:
            self._display.update(self._render())
            if event.kind is EventKind.BUILD_ENDED:
                self._display.stop()
                self._display = None

    def _render(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_row("[bold]stardag build[/bold]", self.line())
        names = sorted(self.running.values())
        if names:
            shown = ", ".join(names[:6]) + (f" (+{len(names) - 6})" if len(names) > 6 else "")
            table.add_row("running", shown)
        return table
