"""The build: walk the DAG from the requested tasks and run what is missing, bottom-up.

One engine (`_Build`) behind four entry points:

- `build(tasks)`: concurrent in this process; async tasks on the event loop,
  sync tasks on a thread pool (`max_workers`).
- `build_aio(tasks)`: the same, awaited inside your event loop.
- `build_sequential(tasks)` / `build_sequential_aio(tasks)`: one task at a time.

Makefile semantics: a complete task is not run and its upstream is not walked;
each task id runs at most once per build. A cycle is an error before anything
runs. `run()` may yield tasks (dynamic dependencies), built before it resumes.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Iterable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from stardag import _config
from stardag._errors import BuildOptionError
from stardag.build._claim_config import ClaimConfig, default_claims
from stardag.build._context import BuildContext, current_build_context
from stardag.build._engine import Engine
from stardag.build._events import BuildListener, EventKind
from stardag.build._executor import TaskExecutor
from stardag.build._interrupt import Interrupts
from stardag.build._limits import ConcurrencyConfig
from stardag.build._summary import BuildSummary, FailMode
from stardag.remote import _config as _remotes_config
from stardag.store._store import pinned_settings
from stardag.task._base import BaseTask

if TYPE_CHECKING:
    from stardag.build._claims import Claimer
    from stardag.build._recorder import Recorder
    from stardag.registry import Registry


class _Default(enum.Enum):
    REGISTRY = "the default registry"
    CLAIMS = "the default claims"

    def __repr__(self) -> str:
        return f"DEFAULT_{self.name}"


DEFAULT_REGISTRY: Final = _Default.REGISTRY
DEFAULT_CLAIMS: Final = _Default.CLAIMS
"""`claims=` default: `ClaimConfig()` whenever the build records into a registry, unless
`STARDAG_CLAIMS=0`."""
"""`registry=` default: `STARDAG_REGISTRY_URL`, else `$STARDAG_HOME/registry.db`.

`STARDAG_NO_REGISTRY=1` turns the default off (benchmarks); an explicit registry
is still recorded into.
"""

RegistryArg: TypeAlias = "Registry | str | Literal[_Default.REGISTRY] | None"
ClaimsArg: TypeAlias = "ClaimConfig | Literal[_Default.CLAIMS] | None"
_logger = logging.getLogger("stardag")
_said_unrecorded = False


def _start_recorder(
    registry: RegistryArg, build_id: str, roots: Sequence[BaseTask]
) -> Recorder | None:
    """The registry recorder for a build, or None; fails here, before any task runs."""
    global _said_unrecorded
    if registry is None:
        if not _said_unrecorded:
            _said_unrecorded = True
            _logger.warning("building with registry=None: builds are not recorded in a registry")
        return None
    if registry is DEFAULT_REGISTRY and os.environ.get("STARDAG_NO_REGISTRY", "") not in ("", "0"):
        return None
    from stardag.build._recorder import Recorder

    return Recorder.start(None if registry is DEFAULT_REGISTRY else registry, build_id, roots)


def _start_claimer(recorder: Recorder | None, claims: ClaimsArg, engine: Engine) -> Claimer | None:
    """The claimer of a recorded build, attached to its engine; None without claims."""
    config = default_claims() if claims is DEFAULT_CLAIMS else claims
    if recorder is None or config is None:
        return None
    if not isinstance(config, ClaimConfig):
        raise TypeError(f"claims must be a ClaimConfig or None, not {type(config).__qualname__}")
    from stardag.build._claims import Claimer

    claimer = Claimer(recorder.registry, config, engine.summary.build_id, engine)
    engine.claimer = claimer
    claimer.start()
    return claimer


def _as_list(tasks: BaseTask | Iterable[BaseTask]) -> list[BaseTask]:
    found = [tasks] if isinstance(tasks, BaseTask) else list(tasks)
    for task in found:
        if not isinstance(task, BaseTask):
            raise TypeError(f"expected a task, got {type(task).__qualname__}: {task!r}")
    return found


def _listeners(listeners: Sequence[BuildListener] | None) -> list[BuildListener]:
    found = list(listeners or ())
    # Write-through (_write_through): a push per output when the active remote asks for it.
    from stardag.build._write_through import write_through

    pusher = write_through()
    return found if pusher is None else [*found, pusher]


def _with_progress(
    listeners: Sequence[BuildListener] | None, progress: bool
) -> Sequence[BuildListener] | None:
    """`listeners`, and with `progress` a `Progress` display (live on a terminal) after them."""
    if not progress:
        return listeners
    from stardag.build._progress import Progress

    return [*(listeners or ()), Progress()]


DualRunDefault: TypeAlias = Literal["sync", "async"]
SyncRunDefault: TypeAlias = Literal["thread", "blocking", "process"]


def _run_policy(dual_run_default: str, sync_run_default: str) -> tuple[bool, str]:
    """Check the two run defaults; (whether dual tasks run async, the sync mode)."""
    if dual_run_default not in ("sync", "async"):
        raise BuildOptionError(
            f"dual_run_default must be 'sync' or 'async', got {dual_run_default!r}"
        )
    if sync_run_default not in ("thread", "blocking", "process"):
        raise BuildOptionError(
            f"sync_run_default must be 'thread', 'blocking' or 'process', got {sync_run_default!r}"
        )
    return dual_run_default == "async", sync_run_default


def _sync_in_processes(given: TaskExecutor | None) -> TaskExecutor:
    """sync_run_default="process": sync tasks on a process pool, the others in process."""
    from stardag.build._process import ProcessPoolTaskExecutor
    from stardag.build._routing import InProcessTaskExecutor, RoutedTaskExecutor
    from stardag.build._worker import is_async

    if given is not None:
        raise BuildOptionError(
            "sync_run_default='process' and task_executor= both say where tasks run; "
            "give one (a RoutedTaskExecutor can send sync tasks to a ProcessPoolTaskExecutor)"
        )
    return RoutedTaskExecutor(
        {"in_process": InProcessTaskExecutor(), "process": ProcessPoolTaskExecutor()},
        router=lambda task: None if is_async(task) else "process",
    )


async def _build(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    sequential: bool,
    fail_mode: FailMode,
    max_workers: int | None,
    listeners: Sequence[BuildListener] | None,
    registry: RegistryArg,
    raise_on_failure: bool = True,
    dual_run_default: DualRunDefault = "async",
    sync_run_default: SyncRunDefault = "thread",
    claims: ClaimsArg = DEFAULT_CLAIMS,
    task_executor: TaskExecutor | None = None,
    concurrency_config: ConcurrencyConfig | None = None,
) -> BuildSummary:
    """The one engine behind the four entry points."""
    dual_async, sync_mode = _run_policy(dual_run_default, sync_run_default)
    if sync_mode == "process":
        task_executor = _sync_in_processes(task_executor)
    interrupts = _INTERRUPTS.get() or Interrupts()
    _INTERRUPTS.set(None)  # a build nested in this one's tasks routes nothing of ours
    # SIGINT is ours from here on, even before the engine exists; the configuration
    # (profile, roots, remote, store settings) is resolved once, not for every task.
    with (
        interrupts.routing(),
        _config.pinned_profile(),
        _config.pinned_roots(),
        _remotes_config.pinned(),
        pinned_settings(),
    ):
        summary = BuildSummary(build_id=uuid.uuid4().hex)
        roots = _as_list(tasks)
        recorder = _start_recorder(registry, summary.build_id, roots)
        engine = Engine(
            summary=summary,
            sequential=sequential,
            fail_mode=FailMode(fail_mode),
            max_workers=max_workers,
            # The recorder goes first: a user's listener that raises cannot starve it.
            listeners=[*([recorder] if recorder else []), *_listeners(listeners)],
            dual_async=dual_async,
            sync_mode=sync_mode,
            executor=task_executor,
            concurrency=concurrency_config,
        )
        token = current_build_context.set(BuildContext(build_id=summary.build_id))
        claimer = _start_claimer(recorder, claims, engine)
        try:
            with interrupts.handling(engine):
                await engine.run(roots)
            if engine.interrupts:
                raise _interrupted(summary)
        except BaseException as exc:
            if engine.interrupts > 1 and isinstance(exc, asyncio.CancelledError):
                exc = KeyboardInterrupt()  # abandoned by a second Ctrl-C, not cancelled
                _uncancel()
            if recorder is not None:
                recorder.note_error(exc)
            if exc is not sys.exc_info()[1]:
                raise exc from None
            raise
        finally:
            current_build_context.reset(token)
            if claimer is not None:
                claimer.close()  # releases what this build still holds
            summary.ended = time.time()
            summary.error = engine.first_error
            summary.failed_task = engine.first_failed
            try:
                with engine.lock:
                    engine.emit(EventKind.BUILD_ENDED, summary=summary)
            finally:
                if recorder is not None:
                    recorder.close()
        if engine.first_error is not None and engine.fail_fast and raise_on_failure:
            raise engine.first_error
        if recorder is not None:
            recorder.check()
        return summary


async def build_aio(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    max_workers: int | None = None,
    listeners: Sequence[BuildListener] | None = None,
    registry: RegistryArg = DEFAULT_REGISTRY,
    progress: bool = False,
    raise_on_failure: bool = True,
    dual_run_default: DualRunDefault = "async",
    sync_run_default: SyncRunDefault = "thread",
    claims: ClaimsArg = DEFAULT_CLAIMS,
    task_executor: TaskExecutor | None = None,
    concurrency_config: ConcurrencyConfig | None = None,
) -> BuildSummary:
    """Build concurrently inside the running event loop (see `build` for the arguments)."""
    return await _build(
        tasks,
        sequential=False,
        fail_mode=fail_mode,
        max_workers=max_workers,
        listeners=_with_progress(listeners, progress),
        registry=registry,
        raise_on_failure=raise_on_failure,
        dual_run_default=dual_run_default,
        sync_run_default=sync_run_default,
        claims=claims,
        task_executor=task_executor,
        concurrency_config=concurrency_config,
    )


async def build_sequential_aio(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    listeners: Sequence[BuildListener] | None = None,
    registry: RegistryArg = DEFAULT_REGISTRY,
    progress: bool = False,
    raise_on_failure: bool = True,
    dual_run_default: DualRunDefault = "async",
    sync_run_default: Literal["thread", "blocking"] = "blocking",
    claims: ClaimsArg = DEFAULT_CLAIMS,
) -> BuildSummary:
    """Build one task at a time, inside the running event loop.

    A sync task runs on the loop (`sync_run_default="blocking"`) or on a helper
    thread (`"thread"`); a task with both `run()` and `run_aio()` runs `run_aio()`
    unless `dual_run_default="sync"`. See `build` for the other arguments.
    """
    return await _build(
        tasks,
        sequential=True,
        fail_mode=fail_mode,
        max_workers=1,
        listeners=_with_progress(listeners, progress),
        registry=registry,
        raise_on_failure=raise_on_failure,
        dual_run_default=dual_run_default,
        sync_run_default=sync_run_default,
        claims=claims,
    )


def build(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    max_workers: int | None = None,
    listeners: Sequence[BuildListener] | None = None,
    registry: RegistryArg = DEFAULT_REGISTRY,
    progress: bool = False,
    raise_on_failure: bool = True,
    dual_run_default: DualRunDefault = "async",
    sync_run_default: SyncRunDefault = "thread",
    claims: ClaimsArg = DEFAULT_CLAIMS,
    task_executor: TaskExecutor | None = None,
    concurrency_config: ConcurrencyConfig | None = None,
) -> BuildSummary:
    """Build every missing output of `tasks` and their upstream, concurrently.

    Args:
        tasks: a task or tasks to build.
        fail_mode: `FAIL_FAST` stops at the first failure and re-raises the task's
            own exception; `CONTINUE` builds every branch that does not depend on a
            failure and returns a summary whose `status` is `FAILURE` (call
            `summary.raise_on_failure()` to raise `BuildFailedError`).
        max_workers: threads for sync tasks, all started at once. Default: a pool that
            starts with one thread and adds one (up to one per core, at least 2) while
            every thread has been on one task for a few milliseconds and more wait; an
            added thread ends again once no other is held that long.
        listeners: extra `BuildListener`s that receive every build event.
        registry: where the build is recorded: a `sd.registry.Registry`, an SQLAlchemy
            URL, or None to build without recording. If it cannot be written, the
            build raises `RegistryError` before any task runs.
        progress: show progress on stderr: a live display on a terminal (total, done,
            cached, running, failed, the tasks running now), plain lines otherwise.
        raise_on_failure: with `FAIL_FAST`, re-raise the failing task's exception
            (default); False returns the summary with status `FAILURE` instead.
        dual_run_default: how a task that defines both `run()` and `run_aio()` runs:
            `"async"` (the default here) or `"sync"`.
        sync_run_default: where sync tasks run: `"thread"` (a worker thread, the
            default), `"blocking"` (on the event loop's thread) or `"process"`.
        claims: how this build claims each task in its registry before running it, so
            builders sharing the registry compute each task once (`sd.ClaimConfig`: TTL,
            heartbeat). Default: claims on whenever the build records (off with
            `STARDAG_CLAIMS=0`); None turns them off.
        task_executor: where tasks run (docs/scale-out.md): by default in this
            process; `ProcessPoolTaskExecutor()` for a local process pool,
            `stardag.dask.DaskExecutor(...)` for a Dask cluster, or a
            `RoutedTaskExecutor` that picks one per task. This process stays the
            coordinator: it checks, orders, records and reports everything.
        concurrency_config: named limits on how many tasks run at once, on any executor.
    """
    return _run_sync(
        build_aio(
            tasks,
            fail_mode=fail_mode,
            max_workers=max_workers,
            listeners=listeners,
            registry=registry,
            progress=progress,
            raise_on_failure=raise_on_failure,
            dual_run_default=dual_run_default,
            sync_run_default=sync_run_default,
            claims=claims,
            task_executor=task_executor,
            concurrency_config=concurrency_config,
        )
    )


def build_sequential(
    tasks: BaseTask | Iterable[BaseTask],
    *,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    listeners: Sequence[BuildListener] | None = None,
    registry: RegistryArg = DEFAULT_REGISTRY,
    progress: bool = False,
    raise_on_failure: bool = True,
    dual_run_default: DualRunDefault = "sync",
    sync_run_default: Literal["thread", "blocking"] = "blocking",
    claims: ClaimsArg = DEFAULT_CLAIMS,
) -> BuildSummary:
    """Build every missing output of `tasks` and their upstream, one task at a time.

    Sync tasks run on the calling thread; a task with both `run()` and `run_aio()`
    runs `run()` unless `dual_run_default="async"`. See `build` for the arguments.
    """
    return _run_sync(
        build_sequential_aio(
            tasks,
            fail_mode=fail_mode,
            listeners=listeners,
            registry=registry,
            progress=progress,
            raise_on_failure=raise_on_failure,
            dual_run_default=dual_run_default,
            sync_run_default=sync_run_default,
            claims=claims,
        )
    )


# The sync entry points' SIGINT routing, seen by the build they start (the task that
# `asyncio.run` makes copies the context it was started in).
_INTERRUPTS: ContextVar[Interrupts | None] = ContextVar("stardag_interrupts", default=None)
SIGNAL_POLL = 0.1  # seconds between a waiting caller's looks for a Ctrl-C


def _run_sync(coro: Coroutine[Any, Any, BuildSummary]) -> BuildSummary:
    """Run a build coroutine; from inside a running loop (a notebook), on a helper thread.

    Never inside an `except` block: every error the build raises would chain to it.
    """
    interrupts = Interrupts()
    if not _loop_running():
        token = _INTERRUPTS.set(interrupts)
        try:
            with interrupts.routing():  # asyncio.run then leaves SIGINT to us
                return asyncio.run(coro)
        finally:
            _INTERRUPTS.reset(token)
    outcome: dict[str, Any] = {}

    done = threading.Event()

    def target() -> None:
        _INTERRUPTS.set(interrupts)  # in the thread's copy of the caller's context
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001  # re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    # The caller's context variables (build labels, target roots) go along to the thread.
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target,), name="stardag-build")
    thread.start()
    # Not `thread.join()`: a KeyboardInterrupt inside it marks the thread as ended while
    # it runs on (Python 3.11's `_wait_for_tstate_lock`). In slices: a SIGINT the kernel
    # hands to another thread runs its handler on this one only when this one wakes.
    while not done.is_set():
        try:
            done.wait(SIGNAL_POLL)
        except KeyboardInterrupt:  # SIGINT is not ours off the main thread: relay it
            interrupts.relay()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]  # set by target()


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _uncancel() -> None:
    """The build turned its own cancellation into KeyboardInterrupt: take the request back."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        task.uncancel()


def _interrupted(summary: BuildSummary) -> KeyboardInterrupt:
    error = KeyboardInterrupt()
    error.add_note(f"stardag: build {summary.build_id[:8]} interrupted: {summary}")
    return error
