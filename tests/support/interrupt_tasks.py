"""Tasks that block until released, for tests that stop a build with a real SIGINT.

`python -m interrupt_tasks ENTRY [early|offmain]` builds `TASKS` through one of the
four entry points (`early`: the process sends itself SIGINT while the build is
starting, right after it opened the registry, before any task can start; `offmain`:
once the tasks have started, a thread other than the main one receives the SIGINT, as
the kernel may choose). Each task prints `started I` and waits for the file
`$INTERRUPT_RELEASE`.
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
STARTED: list[int] = []


@sd.task
def blocked(i: int) -> int:
    """Print that it started, then wait until released."""
    sys.stdout.write(f"started {i}\n")  # one write: two tasks' lines never interleave
    sys.stdout.flush()
    STARTED.append(i)
    while not os.path.exists(RELEASE):
        time.sleep(0.01)
    return i


TASKS = [blocked(i=i) for i in range(6)]

ENTRIES: dict[str, Callable[[], Any]] = {
    "build": lambda: sd.build(TASKS, max_workers=2),
    "build_sequential": lambda: sd.build_sequential(TASKS),
    "build_aio": lambda: asyncio.run(sd.build_aio(TASKS, max_workers=2)),
    "build_sequential_aio": lambda: asyncio.run(sd.build_sequential_aio(TASKS)),
    "build_in_loop": lambda: _in_a_running_loop(lambda: sd.build(TASKS, max_workers=2)),
}


def _in_a_running_loop(call: Callable[[], Any]) -> Any:
    """`call()` where a loop runs, as in a notebook (the build then runs on a thread);
    a loop that leaves SIGINT alone, as a notebook's does, unlike `asyncio.run`'s."""

    async def calling() -> Any:
        return call()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(calling())
    finally:
        loop.close()


def _interrupt_while_starting() -> None:
    """Ctrl-C right after the build has opened its registry: a controlled interleaving."""
    from stardag.build import _run

    start = _run._start_recorder

    def then_interrupt(*args: Any, **kwargs: Any) -> Any:
        recorder = start(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return recorder

    _run._start_recorder = then_interrupt  # type: ignore[assignment]  # a test's seam


def _interrupt_off_the_main_thread(running: int) -> None:
    """Once `running` tasks have started, SIGINT lands on a thread of its own."""

    def interrupt() -> None:
        while len(STARTED) < running:
            time.sleep(0.01)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()


def main(entry: str, mode: str = "") -> None:
    """Build through `entry`; report how a KeyboardInterrupt came out."""
    if mode == "early":
        _interrupt_while_starting()
    elif mode == "offmain":
        _interrupt_off_the_main_thread(1 if "sequential" in entry else 2)
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
    main(*sys.argv[1:3])
