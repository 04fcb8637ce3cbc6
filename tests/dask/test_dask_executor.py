"""DaskExecutor on a real LocalCluster: results, dynamic deps, failures, faults, two machines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import distributed
import executor_tasks as t
import pytest
from dask_support import S3Config

import stardag as sd
from stardag.build import ConcurrencyConfig, FailMode
from stardag.dask import DaskExecutor
from stardag.maintenance._verify import verify

SUPPORT = Path(t.__file__).parent


def _continue(tasks: Any, **kwargs: Any) -> sd.BuildSummary:
    try:
        return sd.build(tasks, fail_mode=FailMode.CONTINUE, **kwargs)
    except sd.BuildFailedError as exc:
        return exc.summary


def test_dag_runs_on_the_workers_and_the_coordinator_records_it(
    dask_client: distributed.Client, worker_homes: list[Path]
) -> None:
    """Each task is one Dask future keyed by its id; runs are recorded here, with the worker."""
    parts = [t.square(x=i) for i in range(3)]
    root = t.Total(parts=parts)
    key = t.dask_key(tag="which key")
    sd.build([root, key], task_executor=DaskExecutor(dask_client))
    assert root.load() == 5
    assert key.load() == f"stardag-{key.id}"
    addresses = set(dask_client.scheduler_info()["workers"])
    for task in [root, *parts]:
        (run,) = sd.registry.history(task)
        assert (run.outcome, run.executor) == ("computed", "dask")
        assert run.executor_ref.split()[0] in addresses
    for home in worker_homes:  # workers wrote where the build said, not into their homes
        assert not (home / "store").exists() and not (home / "registry.db").exists()


class _CountingFetches(DaskExecutor):
    """Counts outcomes fetched from a worker; with `drop_pushed`, ignores every push."""

    def __init__(self, client: distributed.Client, *, drop_pushed: bool = False) -> None:
        super().__init__(client)
        self.fetched = 0
        self.drop_pushed = drop_pushed

    def _on_pushed(self, event: tuple[float, list[Any]]) -> None:
        if not self.drop_pushed:
            super()._on_pushed(event)

    async def _fetch(self, future: Any) -> Any:
        self.fetched += 1
        return await super()._fetch(future)


def test_outcomes_come_by_push_not_one_fetch_per_task(dask_client: distributed.Client) -> None:
    """Each worker pushes its outcome ahead of the future's completion: nothing is fetched."""
    executor = _CountingFetches(dask_client)
    parts = [t.square(x=100 + i) for i in range(12)]
    sd.build(t.Total(parts=parts), task_executor=executor)
    assert t.Total(parts=parts).load() == sum((100 + i) ** 2 for i in range(12))
    assert executor.fetched == 0


def test_an_outcome_that_was_not_pushed_is_fetched_from_its_worker(
    dask_client: distributed.Client,
) -> None:
    """Without the push (lost, late), the build reads each outcome from its future instead."""
    executor = _CountingFetches(dask_client, drop_pushed=True)
    parts = [t.square(x=200 + i) for i in range(3)]
    sd.build(t.Total(parts=parts), task_executor=executor)
    assert t.Total(parts=parts).load() == sum((200 + i) ** 2 for i in range(3))
    assert executor.fetched == 4


def test_dynamic_dependencies_and_async_tasks_on_dask(dask_client: distributed.Client) -> None:
    """A yielding task is re-run on a worker after what it yielded is built; async runs too."""
    fanout, double = t.Fanout(n=4), t.async_double(x=5)
    sd.build([fanout, double], task_executor=DaskExecutor(dask_client))
    assert (fanout.load(), double.load()) == (0 + 1 + 4 + 9, 10)
    record = fanout.output().record()
    assert record is not None and record.dynamic == [t.square(x=i).id for i in range(4)]


def test_executor_from_an_address_opens_and_closes_its_own_client(
    dask_client: distributed.Client,
) -> None:
    """DaskExecutor("tcp://...") connects for the build (the docs' spelling)."""
    task = t.square(x=41)
    sd.build(task, task_executor=DaskExecutor(dask_client.scheduler.address))
    assert task.load() == 1681


def test_failure_on_a_worker_carries_its_traceback(dask_client: distributed.Client) -> None:
    """FAIL_FAST re-raises the task's exception with the worker's traceback in its notes."""
    with pytest.raises(ValueError, match="failed on dask") as info:
        sd.build(t.boom(message="failed on dask"), task_executor=DaskExecutor(dask_client))
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "worker traceback (dask tcp://127.0.0.1:" in notes and "in boom" in notes


def test_continue_on_dask_builds_every_other_branch(dask_client: distributed.Client) -> None:
    """CONTINUE on Dask behaves as in process: failure reported, the rest built."""
    bad = t.Total(parts=[t.boom(message="dask no"), t.square(x=51)])
    good = t.Total(parts=[t.square(x=52)])
    summary = _continue([bad, good], task_executor=DaskExecutor(dask_client))
    assert (summary.failed, summary.skipped) == (1, 1)
    assert good.load() == 52 * 52 and t.square(x=51).load() == 51 * 51


def test_unimportable_task_fails_before_anything_runs_on_dask(
    dask_client: distributed.Client,
) -> None:
    """A task whose module the workers lack is named before any task runs."""
    module = types.ModuleType("ghost_tasks_for_dask")
    sys.modules[module.__name__] = module
    try:
        exec(  # a module only this process has
            "import stardag as sd\n"
            "class DaskGhost(sd.Task[int]):\n"
            "    def run(self) -> int:\n"
            "        return 3\n",
            module.__dict__,
        )
        ghost, first = module.DaskGhost(), t.square(x=53)
        with pytest.raises(sd.WorkerImportError, match="ghost_tasks_for_dask"):
            sd.build([first, ghost], task_executor=DaskExecutor(dask_client))
        assert not first.complete()
    finally:
        del sys.modules[module.__name__]


def test_worker_killed_mid_task_is_run_again_elsewhere(
    dask_client: distributed.Client, tmp_path: Path
) -> None:
    """SIGKILL of the worker mid-task: Dask runs it again on a live worker; nothing partial."""
    marks = tmp_path / "marks"
    marks.mkdir()
    task = t.die_until(marks=str(marks), deaths=1)
    sd.build(task, task_executor=DaskExecutor(dask_client))
    assert task.load() == 7
    assert len(list(marks.iterdir())) == 1  # it did die once
    assert verify(task.output().store).ok
    (run,) = sd.registry.history(task)
    assert run.outcome == "computed"


def test_task_that_kills_every_worker_fails_clearly_and_a_rebuild_completes_it(
    dask_client: distributed.Client, tmp_path: Path
) -> None:
    """Killed each time it is tried: WorkerLostError, no record; the next build completes it."""
    marks = tmp_path / "marks"
    marks.mkdir()
    task = t.die_until(marks=str(marks), deaths=2)
    with pytest.raises(sd.WorkerLostError, match="died each time") as info:
        sd.build(task, task_executor=DaskExecutor(dask_client))
    assert info.value.task_id == task.id
    assert task.output().record() is None
    assert verify(task.output().store).ok
    sd.build(task, task_executor=DaskExecutor(dask_client))
    assert task.load() == 7


def test_named_limit_holds_on_dask(dask_client: distributed.Client, tmp_path: Path) -> None:
    """A limit of 1 holds across two Dask workers."""
    config = ConcurrencyConfig(limits={"api": 1}, key_selector=lambda task: "api")
    marks = tmp_path / "marks"
    marks.mkdir()
    tasks = [t.interval(marks=str(marks), tag=i, seconds=0.2) for i in range(3)]
    sd.build(tasks, task_executor=DaskExecutor(dask_client), concurrency_config=config)
    assert len(list(marks.iterdir())) == 3
    assert t.overlap(marks) == 1


def test_two_machines_share_only_an_s3_store(
    dask_client: distributed.Client,
    s3_options: dict[str, Any],
    s3_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers with their own homes build into S3; a third process with an empty home reads it."""
    import fsspec.config

    monkeypatch.setitem(fsspec.config.conf, "s3", s3_options)
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__DEFAULT", s3_url)
    dask_client.register_plugin(S3Config(s3_options), name="s3-config")
    every = t.shared_dag()
    try:
        sd.build(every, task_executor=DaskExecutor(dask_client))
    finally:
        dask_client.unregister_worker_plugin("s3-config")
    for task in every:
        (run,) = sd.registry.history(task)
        assert (run.outcome, run.executor) == ("computed", "dask")
    assert not (Path(os.environ["STARDAG_HOME"]) / "store").exists()  # nothing written here
    third = tmp_path / "third"
    env = {
        **os.environ,
        "HOME": str(third),
        "STARDAG_HOME": str(third / ".stardag"),
        "FSSPEC_S3": json.dumps(s3_options),  # fsspec's config from the environment
        "PYTHONPATH": str(SUPPORT),
    }
    read = subprocess.run(
        [sys.executable, "-c", READER],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr
    ids, values = json.loads(read.stdout)
    assert ids == [task.id for task in every]
    assert values == [task.load() for task in every]
    assert not (third / ".stardag" / "store").exists()


READER = """
import json
import executor_tasks
every = executor_tasks.shared_dag()
print(json.dumps([[task.id for task in every], [task.load() for task in every]]))
"""
