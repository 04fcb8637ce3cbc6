"""`StardagApp` (Modal functions that run stardag tasks) and `ModalTaskExecutor`.

A `StardagApp` wraps a `modal.App` with one Modal function per *worker* (a
name and its `FunctionSettings`: image, GPU, memory, timeout, secrets, ...).
Every such function runs `run_payload`: one task, sent as JSON. The executor
picks a worker per task (`worker_selector`), sends the payload with
`Function.remote`, and turns the JSON answer back into an outcome; routed with
`RoutedTaskExecutor`, the rest of the DAG runs locally.

Invariant: nothing is submitted unless every task bound for Modal writes to a
store root a Modal container can reach (an object store URL, not a local path)
and Modal has credentials here; `preflight` checks both, naming the task.
With `run_locally=True` each function's body runs in this process instead
(Modal's `Function.local`): the same payload, entry point and answer, no cloud.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, ClassVar, TypedDict

from typing_extensions import Required

from stardag import _config
from stardag._errors import ExecutorError
from stardag.build._executor import RunPlace, TaskExecutor, TaskFailed, TaskOutcome
from stardag.integration._extras import missing_extra
from stardag.integration.modal._payload import EXECUTOR, outcome_from, payload_for, run_payload
from stardag.task._base import BaseTask
from stardag.task._stored import Task

try:
    import modal
except ImportError as exc:
    raise missing_extra("modal", "modal", exc) from exc

WORKER_PREFIX = "stardag_worker_"
LOCAL_SCHEMES = ("file", "local", "memory")


class FunctionSettings(TypedDict, total=False):
    """Settings of one worker's Modal function (passed to `modal.App.function`)."""

    image: Required[modal.Image]
    gpu: str | list[str]
    cpu: float | tuple[float, float]
    memory: int | tuple[int, int]
    timeout: int
    secrets: list[modal.Secret]
    volumes: dict[str | PurePosixPath, modal.Volume | modal.CloudBucketMount]
    retries: int
    max_containers: int
    region: str | list[str]
    cloud: str
    env: dict[str, str | None]


def worker_function_name(worker: str) -> str:
    """The Modal function name of a worker: `stardag_worker_<worker>`."""
    return WORKER_PREFIX + worker


class StardagApp:
    """A Modal app with one function per stardag worker.

    Args:
        app: a `modal.App` (yours: add other functions as you like) or its name.
        workers: settings per worker name; a task goes to the worker that the
            executor's `worker_selector` names (by default `"default"`).
    """

    def __init__(self, app: modal.App | str, *, workers: Mapping[str, FunctionSettings]) -> None:
        if not workers:
            raise ExecutorError("StardagApp needs at least one worker, e.g. {'default': ...}")
        self.modal_app = app if isinstance(app, modal.App) else modal.App(app)
        self.settings = dict(workers)
        self.functions: dict[str, modal.Function[..., Any, Any]] = {
            worker: self.modal_app.function(
                name=worker_function_name(worker),
                serialized=True,  # the body is `run_payload`, imported from stardag in the image
                **settings,
            )(run_payload)
            for worker, settings in self.settings.items()
        }

    @property
    def name(self) -> str:
        """The Modal app's name."""
        return self.modal_app.name or ""

    def executor(
        self, worker_selector: Callable[[BaseTask], str] | None = None, *, run_locally: bool = False
    ) -> ModalTaskExecutor:
        """A `ModalTaskExecutor` for this app's workers."""
        return ModalTaskExecutor(self, worker_selector=worker_selector, run_locally=run_locally)


class ModalTaskExecutor(TaskExecutor):
    """Runs tasks as calls of a `StardagApp`'s Modal functions.

    Args:
        app: the `StardagApp` (run it with `with app.modal_app.run():`), or the
            name of a deployed one (`modal deploy`), whose functions are looked up.
        worker_selector: the worker for a task (default: `"default"`).
        run_locally: call each function's body here (`Function.local`) instead
            of on Modal: the payloads and answers of a real run, for tests.
    """

    name: ClassVar[str] = EXECUTOR

    def __init__(
        self,
        app: StardagApp | str,
        *,
        worker_selector: Callable[[BaseTask], str] | None = None,
        run_locally: bool = False,
    ) -> None:
        self.app = app
        self.worker_selector = worker_selector or (lambda task: "default")
        self.run_locally = run_locally
        if run_locally and not isinstance(app, StardagApp):
            raise ExecutorError("run_locally=True needs the StardagApp itself, not its name")

    def worker_for(self, task: BaseTask) -> str:
        """The worker a task goes to; `ExecutorError` if the app has no such worker."""
        worker = self.worker_selector(task)
        if isinstance(self.app, StardagApp) and worker not in self.app.functions:
            raise ExecutorError(
                f"task {_describe(task)} is routed to Modal worker {worker!r}, which app "
                f"{self.app.name!r} does not have; its workers: {sorted(self.app.functions)}",
                task_id=task.id,
            )
        return worker

    async def preflight(self, tasks: Sequence[BaseTask]) -> None:
        """Every task has a worker and a reachable store root; Modal has credentials."""
        for task in tasks:
            self.worker_for(task)
            _check_root(task)
        if tasks and not self.run_locally:
            _check_credentials(tasks[0])

    async def submit(self, task: BaseTask) -> TaskOutcome:
        """Send the task's payload to its worker's function; read the answer."""
        worker = self.worker_for(task)
        payload = payload_for(task, worker)
        function = self._function(worker)
        try:
            if self.run_locally:
                answer = await asyncio.to_thread(function.local, payload)
            else:
                answer = await function.remote.aio(payload)
        except modal.exception.Error as exc:
            error = ExecutorError(
                f"Modal could not run task {_describe(task)} on worker {worker!r}: "
                f"{type(exc).__name__}: {exc}",
                task_id=task.id,
            )
            return TaskFailed(RunPlace(self.name, worker), error)
        return outcome_from(answer, task)

    def _function(self, worker: str) -> modal.Function[..., Any, Any]:
        if isinstance(self.app, StardagApp):
            return self.app.functions[worker]
        return modal.Function.from_name(self.app, worker_function_name(worker))


def _describe(task: BaseTask) -> str:
    return f"{type(task).get_name()} ({task.id[:12]})"


def _check_root(task: BaseTask) -> None:
    """A store-backed task must write where a Modal container can write too."""
    if not isinstance(task, Task):
        return  # its own complete()/run() decide where it writes
    key = task._target_root_key
    url = _config.target_root(key)
    scheme = url.split("://", 1)[0] if "://" in url else "file"
    if scheme in LOCAL_SCHEMES:
        raise ExecutorError(
            f"task {_describe(task)} would run on Modal, but it writes to store root {key!r} "
            f"= {url}, which a Modal container cannot reach. Point the root at an object "
            'store both can reach, e.g. STARDAG_TARGET_ROOTS=\'{"default": '
            '"s3://bucket/prefix"}\', or run the task locally (RoutedTaskExecutor).',
            task_id=task.id,
        )


def _check_credentials(task: BaseTask) -> None:
    """Modal's client must have a token before anything is sent."""
    config = modal.config.config
    if config.get("token_id") and config.get("token_secret"):
        return
    raise ExecutorError(
        f"task {_describe(task)} would run on Modal, but Modal has no credentials here: "
        "set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET (or run `modal token new`); to try the "
        "pipeline without Modal, use ModalTaskExecutor(..., run_locally=True)",
        task_id=task.id,
    )
