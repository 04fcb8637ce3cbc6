"""Whether a build recorded as running still has a process: "abandoned" if it died.

A build row says "running" from its start until its end is written; a process
killed in between (SIGKILL, a crash, a lost machine) never writes the end. On the
machine that ran it, the row's pid tells: no such process, or a process that
started after the build did (the pid was reused), means the build was abandoned.
A build from another machine cannot be checked from here and stays "running".
"""

from __future__ import annotations

import os
import socket

RUNNING = "running"
ABANDONED = "abandoned"
CLOCK_SLACK = 1.0  # seconds: /proc's start times are in clock ticks since boot


def status(recorded: str, host: str, pid: int, started: float) -> str:
    """The recorded status, or "abandoned" for a running build whose process is gone."""
    if recorded != RUNNING or host != socket.gethostname() or os.name != "posix":
        return recorded
    return ABANDONED if not _alive_since(pid, started) else RUNNING


def _alive_since(pid: int, started: float) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user's process
    began = _process_start(pid)
    return began is None or began <= started + CLOCK_SLACK


def _process_start(pid: int) -> float | None:
    """When a process started (seconds since the epoch), where /proc tells; else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    return boot + int(fields[19]) / ticks
