"""Build progress: plain log lines off a terminal, a live display on one."""

from __future__ import annotations

import io

import stardag as sd
from stardag.build._progress import Progress

sd.auto_namespace(__name__)


@sd.task
def part(i: int) -> int:
    return i


@sd.task
def total(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    return a + b


def test_plain_lines_report_each_task_and_the_end() -> None:
    """Without a terminal every finished task gets one line, then a summary."""
    stream = io.StringIO()
    sd.build(total(a=part(i=1), b=part(i=2)), listeners=[Progress(stream, live=False)])
    lines = stream.getvalue().splitlines()
    assert sum(line.strip().startswith("done") for line in lines) == 3
    assert lines[-1].startswith("build ") and "3/3 complete: 3 done, 0 cached" in lines[-1]


def test_cached_tasks_count_as_complete() -> None:
    """A rebuild reports cache hits."""
    sd.build(part(i=5))
    progress = Progress(io.StringIO(), live=False)
    sd.build(total(a=part(i=5), b=part(i=6)), listeners=[progress])
    assert progress.counts == {"cached": 1, "done": 2, "failed": 0, "skipped": 0, "interrupted": 0}
    assert progress.total == 3


def test_live_display_renders_to_the_stream() -> None:
    """On a terminal the live display shows the counts."""
    stream = io.StringIO()
    sd.build(total(a=part(i=7), b=part(i=8)), listeners=[Progress(stream, live=True)])
    assert "3/3 complete" in stream.getvalue()
