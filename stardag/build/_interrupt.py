"""Ctrl-C during a build: the first stops starting tasks, the second abandons the rest.

While a build runs on the main thread, SIGINT goes to its engine instead of
raising `KeyboardInterrupt` wherever the main thread happens to be (unless the
program installed a SIGINT handler of its own, which is left alone). That holds
from the moment the build starts, not only once its engine runs: a Ctrl-C while
it opens the registry is kept for the engine, which then starts no task (a second
one raises `KeyboardInterrupt` at once). Off the main thread, the entry point
relays the `KeyboardInterrupt` it receives instead.

Python runs a signal's handler on the main thread, between two bytecodes, but the
kernel may deliver SIGINT to any thread; the main thread, asleep in the loop's
`select` while tasks run, would then not notice until something else woke it. So
while the engine runs, the signal also writes to a socket the loop watches
(`signal.set_wakeup_fd`), which wakes it at once.

The invariant: every action record a build's tasks publish is one the build sees
and records. `PublishGate` closes when the build abandons its running tasks, after
the records being published at that moment are out, so a task that finishes after
that stores its blob (garbage for gc) but never a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any, Protocol

from stardag._errors import BuildInterruptedError

SHOWN = 8  # running tasks named in a message


class Interruptible(Protocol):
    """What SIGINT talks to: the build's engine."""

    def signal(self) -> None:
        """One Ctrl-C."""


class Interrupts:
    """Routes SIGINT to the engine of the build running now (see the module docstring)."""

    def __init__(self) -> None:
        self.engine: Interruptible | None = None
        self.early = 0  # relayed before the engine existed
        self.finished = False  # the engine has run

    @contextlib.contextmanager
    def routing(self) -> Iterator[None]:
        """On the main thread, take SIGINT for the whole build (`_on_sigint`); restore after.

        Installed before asyncio's own handler would be (which cancels the main task:
        the `KeyboardInterrupt` would then chain to a `CancelledError`).
        """
        previous = replaceable_handler()
        if previous is not None:
            signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _on_sigint(self, _signum: int, _frame: Any) -> None:
        engine = self.engine
        if engine is not None:
            engine.signal()
        elif self.finished or self.early:
            raise KeyboardInterrupt  # after the build ran, or twice before it began
        else:
            self.early += 1
            say("\nstardag: interrupted; the build will start no task (Ctrl-C again to stop now)\n")

    @contextlib.contextmanager
    def handling(self, engine: Interruptible) -> Iterator[None]:
        """Send SIGINT to `engine` while the block runs; restore the handler after."""
        self.engine = engine
        for _ in range(self.early):
            engine.signal()
        previous = replaceable_handler()
        if previous is not None:
            signal.signal(signal.SIGINT, lambda _signum, _frame: engine.signal())
        try:
            with _waking_the_loop():
                yield
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self.engine = None
            self.finished = True

    def relay(self) -> None:
        """A KeyboardInterrupt caught on another thread than the build's, for the build."""
        engine = self.engine
        if engine is None:
            self.early += 1
        else:
            engine.signal()


@contextlib.contextmanager
def _waking_the_loop() -> Iterator[None]:
    """While the block runs, a signal on any thread wakes the running loop (see the
    module docstring); unless another wake-up is set already (asyncio's own, say)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    reader, writer = socket.socketpair()
    with reader, writer, contextlib.ExitStack() as undo:
        reader.setblocking(False)
        writer.setblocking(False)
        if _set_wakeup(loop, reader, writer):
            undo.callback(loop.remove_reader, reader.fileno())
            undo.callback(signal.set_wakeup_fd, -1)
        yield


def _set_wakeup(
    loop: asyncio.AbstractEventLoop, reader: socket.socket, writer: socket.socket
) -> bool:
    """Point signals' wake-up at `writer` and have `loop` drain `reader`; False if
    a wake-up was set already or the loop cannot watch a socket."""
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    if previous != -1:
        signal.set_wakeup_fd(previous)
        return False
    try:
        loop.add_reader(reader.fileno(), _drain, reader)
    except NotImplementedError:  # a loop without readers (Windows' proactor)
        signal.set_wakeup_fd(-1)
        return False
    return True


def _drain(reader: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while reader.recv(512):
            pass


def replaceable_handler() -> Any:
    """The SIGINT handler to restore after the build, or None to leave SIGINT alone."""
    if threading.current_thread() is not threading.main_thread():
        return None
    handler = signal.getsignal(signal.SIGINT)
    if handler is signal.default_int_handler:
        return handler
    # asyncio.run's own handler (it cancels the main task): ours stands in for it.
    method = getattr(handler, "func", handler)  # asyncio binds it with functools.partial
    if getattr(method, "__func__", None) is getattr(asyncio.Runner, "_on_sigint", False):
        return handler
    return None


class PublishGate:
    """Lets a build's tasks publish action records until it is abandoned, never after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._drained: threading.Event | None = None  # made by a close() that must wait
        self.closed = False

    def check(self, task_id: str) -> None:
        """Raise `BuildInterruptedError` if the build was abandoned."""
        if self.closed:
            raise BuildInterruptedError(
                f"task {task_id[:12]} finished after its build was abandoned: not stored",
                task_id=task_id,
            )

    def publishing(self, task_id: str) -> _Publishing:
        """Publish inside this block, or raise `BuildInterruptedError` if abandoned."""
        return _Publishing(self, task_id)

    def close(self) -> None:
        """Refuse new publishes; return once those in flight are done."""
        with self._lock:
            self.closed = True
            if not self._in_flight:
                return
            drained = self._drained = threading.Event()  # set by the last publisher out
        drained.wait()


class _Publishing:
    """`PublishGate.publishing`'s block (a plain class: every task enters one)."""

    __slots__ = ("gate", "task_id")

    def __init__(self, gate: PublishGate, task_id: str) -> None:
        self.gate, self.task_id = gate, task_id

    def __enter__(self) -> None:
        gate = self.gate
        with gate._lock:
            gate.check(self.task_id)
            gate._in_flight += 1

    def __exit__(self, *exc_info: object) -> None:
        gate = self.gate
        with gate._lock:
            gate._in_flight -= 1
            if gate._drained is not None and not gate._in_flight:
                gate._drained.set()


def say(text: str) -> None:
    """Write to stderr's file descriptor: safe in a signal handler (no buffer lock)."""
    with contextlib.suppress(OSError):
        os.write(2, text.encode(errors="replace"))


def running_tasks(names: list[str]) -> str:
    """`N running tasks: a, b, ...` naming the first few."""
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    shown = ", ".join(names[:SHOWN]) + more
    plural = "s" if len(names) != 1 else ""
    return f"{len(names)} running task{plural}" + (f": {shown}" if names else "")


def waiting_message(names: list[str], why: str = "interrupted") -> str:
    """What the first Ctrl-C says."""
    if not names:
        return f"\nstardag: {why}; no task is running, stopping\n"
    return (
        f"\nstardag: {why}; starting no new tasks, waiting for {running_tasks(names)} "
        "(Ctrl-C again to abandon them)\n"
    )


def abandoning_message(names: list[str]) -> str:
    """What the second Ctrl-C says."""
    return f"stardag: abandoning {running_tasks(names)}\n"
