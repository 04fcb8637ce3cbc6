"""Tasks that block until released, for tests that stop a build with a real SIGINT.

`python -m interrupt_tasks ENTRY [early]` builds `TASKS` through one of the four
entry points (`early`: the process sends itself SIGINT while the build is starting,
right after it opened the registry, before any task can start). Each task prints
`started I` and waits for the file `$INTERRUPT_RELEASE`.
On KeyboardInterrupt it releases any abandoned tasks, waits for their threads,
prints what the exception chains to, and exits 130.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import stardag as sd

RELEASE = os.environ.get("INTERRUPT_RELEASE", "")


@sd.task
def blocked(i: int) -> int:
    """Print that it started, then wait until released."""
    sys.stdout.write(f"started {i}\n")  # one write: two tasks' lines never interleave
    sys.stdout.flush()
    while not os.path.exists(RELEASE):
        time.sleep(0.01)
    return i


TASKS = [blocked(i=i) for i in range(6)]

ENTRIES: dict[str, Callable[[], Any]] = {
    "build": lambda: sd.build(TASKS, max_workers=2),
    "build_sequential": lambda: sd.build_sequential(TASKS),
    "build_aio": lambda: asyncio.run(sd.build_aio(TASKS, max_workers=2)),
    "build_sequential_aio": lambda: asyncio.run(sd.build_sequential_aio(TASKS)),
}


def _interrupt_while_starting() -> None:
    """Ctrl-C right after the build has opened its registry: a controlled interleaving."""
    from stardag.build import _run

    start = _run._start_recorder

    def then_interrupt(*args: Any, **kwargs: Any) -> Any:
        recorder = start(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return recorder

    _run._start_recorder = then_interrupt  # type: ignore[assignment]  # a test's seam


def main(entry: str, early: bool = False) -> None:
    """Build through `entry`; report how a KeyboardInterrupt came out."""
    if early:
        _interrupt_while_starting()
    try:
        ENTRIES[entry]()
    except KeyboardInterrupt as exc:
        pathlib.Path(RELEASE).touch()  # abandoned tasks finish now: they must store nothing
        for thread in threading.enumerate():
            if thread.name.startswith("stardag-"):
                thread.join(30)
        print(f"KeyboardInterrupt context={exc.__context__!r} cause={exc.__cause__!r}")
        sys.exit(130)
    print("finished")


if __name__ == "__main__":
    main(sys.argv[1], "early" in sys.argv[2:])
