"""Modal: the app, the payload, the worker entry point, routing and the errors, without the cloud.

Modal's service cannot be reached from here. Everything up to the call is real:
the `modal.App` and its functions, the JSON payload, the worker entry point (run
in a fresh process with its own home, as a container would, and through Modal's
own `Function.local`), the store on a real S3 server, routing and preflight.
`test_a_build_on_modal_itself` makes the real remote calls when credentials, an S3
root and a Modal secret for it are given (see docs/modal.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import modal
import pytest
from modal_tasks import fit, on_modal, report, samples

import stardag as sd
from stardag._errors import ExecutorError, RemoteTaskError
from stardag.build import InProcessTaskExecutor, RoutedTaskExecutor, TaskDone
from stardag.build._events import BuildEvent, EventKind
from stardag.integration.modal import (
    FunctionSettings,
    StardagApp,
    outcome_from,
    payload_for,
    worker_function_name,
)

SUPPORT = Path(__file__).parents[1] / "support"
IMAGE = modal.Image.debian_slim().pip_install("stardag[s3]")  # built only by a real run


@pytest.fixture
def s3_root(s3_url: str, s3_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    """The build's default store root on the local S3 server."""
    import fsspec

    monkeypatch.setitem(fsspec.config.conf, "s3", s3_options)
    monkeypatch.setenv("STARDAG_TARGET_ROOTS", json.dumps({"default": s3_url}))
    return s3_url


def make_app() -> StardagApp:
    return StardagApp(
        "stardag-tests",
        workers={
            "default": FunctionSettings(image=IMAGE),
            "gpu": FunctionSettings(image=IMAGE, gpu="T4", timeout=600, retries=1),
        },
    )


def routed(app: StardagApp, *, run_locally: bool) -> RoutedTaskExecutor:
    modal_executor = app.executor(lambda task: "gpu", run_locally=run_locally)
    return RoutedTaskExecutor({"local": InProcessTaskExecutor(), "modal": modal_executor}, on_modal)


class Places:
    """A listener: where each task ran, by task name."""

    def __init__(self) -> None:
        self.where: dict[str, str] = {}

    def handle(self, event: BuildEvent) -> None:
        if event.kind is EventKind.TASK_COMPLETED and event.task is not None:
            executor = event.where.executor if event.where is not None else "in_process"
            self.where[type(event.task).get_name()] = executor


def test_the_app_has_one_modal_function_per_worker() -> None:
    """Each worker is a Modal function of the app, named after it; built without credentials."""
    app = make_app()
    assert app.name == "stardag-tests"
    assert set(app.functions) == {"default", "gpu"}
    assert all(isinstance(f, modal.Function) for f in app.functions.values())
    assert worker_function_name("gpu") == "stardag_worker_gpu"


def test_the_payload_is_the_tasks_json_spec_store_url_and_worker(s3_root: str) -> None:
    """What is sent: the task (upstream nested), its id, the store roots, the worker; no secrets."""
    task = fit(data=samples(n=4), degree=2)
    payload = json.loads(payload_for(task, "gpu"))
    assert payload["task_id"] == task.id
    assert payload["roots"] == {"default": s3_root}
    assert (payload["worker"], payload["module"]) == ("gpu", "modal_tasks")
    assert payload["task"]["degree"] == 2
    assert payload["task"]["data"]["__name"] == "samples"
    assert "testing" not in json.dumps(payload)  # the S3 key and secret stay here


def test_the_worker_entry_point_runs_a_payload_as_a_container_would(
    s3_root: str, s3_options: dict[str, Any], tmp_path: Path
) -> None:
    """In a fresh process with its own home it builds the task into the shared store."""
    upstream = samples(n=5)
    sd.build(upstream)
    task = fit(data=upstream, degree=1)
    container_home = tmp_path / "container-home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STARDAG_")},
        "STARDAG_HOME": str(container_home),
        "FSSPEC_S3": json.dumps(s3_options),  # in Modal: a secret
        "PYTHONPATH": str(SUPPORT),
    }
    answer = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from stardag.integration.modal import run_payload;"
            " print(run_payload(sys.stdin.read()))",
        ],
        input=payload_for(task, "default"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    outcome = outcome_from(answer, task)
    assert isinstance(outcome, TaskDone) and outcome.where.executor == "modal"
    assert outcome.record is not None and outcome.record.digest == task.output().record().digest
    assert task.load() == {"degree": 1.0, "mean": 2.0}
    assert not (container_home / "registry.db").exists()  # workers never write a registry


def test_modal_function_local_runs_the_same_entry_point(s3_root: str) -> None:
    """`Function.local` of a worker runs our entry point on the payload, here."""
    task = samples(n=3)
    answer = make_app().functions["gpu"].local(payload_for(task, "gpu"))
    assert json.loads(answer)["status"] == "done"
    assert task.load() == [0.0, 1.0, 2.0]


def test_routing_sends_fits_to_modal_and_the_rest_runs_locally(s3_root: str) -> None:
    """A routed build: `fit` through the Modal worker (run locally), the others in process."""
    root = report(model=fit(data=samples(n=6), degree=3))
    places = Places()
    sd.build(root, task_executor=routed(make_app(), run_locally=True), listeners=[places])
    assert places.where == {"samples": "in_process", "fit": "modal", "report": "in_process"}
    assert root.load() == "mean 2.50 at degree 3"


def test_a_local_store_root_is_an_error_before_anything_runs() -> None:
    """With the default (local) root, the task bound for Modal is named, and nothing runs."""
    upstream = samples(n=7)
    root = report(model=fit(data=upstream, degree=1))
    with pytest.raises(ExecutorError, match=r"fit \(\w+\) would run on Modal.*cannot reach"):
        sd.build(root, task_executor=routed(make_app(), run_locally=True))
    assert not upstream.complete()


def test_without_credentials_nothing_is_sent(s3_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Modal token here: a clear error naming the task, before any task runs."""
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    if modal.config.config.get("token_id"):
        pytest.skip("this machine has Modal credentials in ~/.modal.toml")
    upstream = samples(n=8)
    with pytest.raises(ExecutorError, match="Modal has no credentials here"):
        sd.build(fit(data=upstream, degree=1), task_executor=routed(make_app(), run_locally=False))
    assert not upstream.complete()


def test_a_worker_that_the_app_lacks_is_named() -> None:
    """A selector naming a missing worker fails before anything runs, listing the workers."""
    executor = make_app().executor(lambda task: "tpu", run_locally=True)
    with pytest.raises(ExecutorError, match=r"worker 'tpu'.*\['default', 'gpu'\]"):
        sd.build(samples(n=9), task_executor=executor)


def test_a_task_failing_on_the_worker_reports_its_traceback(s3_root: str) -> None:
    """The worker's error type, message and traceback reach the caller."""
    with pytest.raises(RemoteTaskError, match="ArithmeticError: degree -1 is negative") as info:
        sd.build(
            fit(data=samples(n=2), degree=-1), task_executor=routed(make_app(), run_locally=True)
        )
    assert any("modal_tasks.py" in note for note in info.value.__notes__)


REMOTE = ("MODAL_TOKEN_ID", "STARDAG_MODAL_TEST_ROOT", "STARDAG_MODAL_TEST_SECRET")


@pytest.mark.skipif(
    not all(os.environ.get(name) for name in REMOTE),
    reason="needs Modal credentials, an s3:// root and a Modal secret for it",
)
def test_a_build_on_modal_itself(monkeypatch: pytest.MonkeyPatch) -> None:  # pragma: no cover
    """With credentials: the same routed build, `fit` in a Modal container."""
    root_url = os.environ["STARDAG_MODAL_TEST_ROOT"]
    monkeypatch.setenv("STARDAG_TARGET_ROOTS", json.dumps({"default": root_url}))
    image = (
        modal.Image.debian_slim()
        .pip_install("pydantic>=2.7", "sqlmodel", "blake3", "zstandard", "fsspec", "s3fs")
        .pip_install("typer", "rich")
        .add_local_python_source("stardag", "modal_tasks")
    )
    secret = modal.Secret.from_name(os.environ["STARDAG_MODAL_TEST_SECRET"])
    app = StardagApp(
        "stardag-tests", workers={"gpu": FunctionSettings(image=image, secrets=[secret])}
    )
    root = report(model=fit(data=samples(n=6), degree=3))
    places = Places()
    with app.modal_app.run():
        sd.build(root, task_executor=routed(app, run_locally=False), listeners=[places])
    assert places.where["fit"] == "modal"
    assert root.load() == "mean 2.50 at degree 3"
