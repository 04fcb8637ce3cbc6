"""Stardag builds as Prefect flows, checked through the API of Prefect's real local server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import prefect
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import FlowRun, StateType, TaskRun
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_tasks import METER, Flaky, explode, metered, numbers, total

import stardag as sd
from stardag.integration import prefect as sdp

pytestmark = pytest.mark.usefixtures("prefect_server")

NO_WAIT = {"retries": 1, "retry_delay_seconds": 0}


def flow_run_id(summary: sd.BuildSummary) -> uuid.UUID:
    """The flow run a build ran in, as its registry row says."""
    return uuid.UUID(sd.registry.build(summary.build_id).labels["prefect.flow_run_id"])


def read(flow_run: uuid.UUID) -> tuple[FlowRun, dict[str, TaskRun], list[Any]]:
    """A flow run, its task runs by name, and its artifacts, from the server."""

    async def query() -> tuple[FlowRun, dict[str, TaskRun], list[Any]]:
        async with get_client() as client:
            run = await client.read_flow_run(flow_run)
            ids = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run]))
            task_runs = await client.read_task_runs(flow_run_filter=ids)
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run]))
            )
        return run, {t.name: t for t in task_runs}, list(artifacts)

    return asyncio.run(query())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One flow run: `total` over two `numbers`, one of which was complete before."""
    done_before, missing = numbers(n=3), numbers(n=4)
    root = total(a=done_before, b=missing)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STARDAG_HOME", str(tmp_path_factory.mktemp("home")))
        sd.build(done_before)
        summary = sdp.build(root)
        run, task_runs, artifacts = read(flow_run_id(summary))
        yield {
            "root": root,
            "missing": missing,
            "summary": summary,
            "value": root.load(),
            "run": run,
            "task_runs": task_runs,
            "artifacts": artifacts,
            "registry": sd.registry.build(summary.build_id),
            "record": root.output().record(),
        }


def test_each_incomplete_task_is_one_task_run_named_after_it(built: dict[str, Any]) -> None:
    """Task runs are `name (short id)`, one per incomplete task; complete ones are not sent."""
    assert built["run"].state.type is StateType.COMPLETED
    assert set(built["task_runs"]) == {sdp.label(built["missing"]), sdp.label(built["root"])}
    assert all(t.state.type is StateType.COMPLETED for t in built["task_runs"].values())
    assert built["value"] == 0 + 1 + 2 + 0 + 1 + 2 + 3


def test_task_runs_wait_for_their_upstream(built: dict[str, Any]) -> None:
    """The downstream task run waits for the upstream one and starts after it ends."""
    up = built["task_runs"][sdp.label(built["missing"])]
    down = built["task_runs"][sdp.label(built["root"])]
    assert [i.id for i in down.task_inputs["wait_for"]] == [up.id]
    assert down.start_time >= up.end_time


def test_the_registry_records_the_build_with_its_flow_run(built: dict[str, Any]) -> None:
    """Our registry still records every run; the build row names the flow run."""
    info = built["registry"]
    assert info.labels["prefect.flow_run_name"] == built["run"].name
    assert info.counts == {"computed": 2, "cached": 1}
    summary = built["summary"]
    assert (summary.ran, summary.already_complete) == (2, 1)


def test_each_completed_task_publishes_a_markdown_artifact(built: dict[str, Any]) -> None:
    """The artifact names the task id, parameters, output digest and size, and lineage."""
    by_task_run = {a.task_run_id: a for a in built["artifacts"]}
    root = built["root"]
    artifact = by_task_run[built["task_runs"][sdp.label(root)].id]
    record = built["record"]
    assert (artifact.type, artifact.key) == ("markdown", sdp.artifact_key(root))
    for needle in (
        root.id,
        record.digest,
        f"{record.size_raw:,} bytes",
        '"$task"',
        f"stardag lineage {root.id[:12]}",
    ):
        assert needle in artifact.data


def test_a_retry_after_the_output_was_written_is_a_cache_hit(tmp_path: Path) -> None:
    """Prefect retries the task run; the store says it is complete, so it runs once."""
    log = tmp_path / "runs.log"
    task = Flaky(log=str(log), late=True)
    summary = sdp.build(task, task_options=NO_WAIT)
    _, task_runs, artifacts = read(flow_run_id(summary))
    assert log.read_text().count("run") == 1
    assert task_runs[sdp.label(task)].run_count == 2
    assert task.load() == 42
    assert "cache hit" in artifacts[0].data


def test_retries_run_a_task_again_when_it_failed_before_writing(tmp_path: Path) -> None:
    """A first attempt that wrote nothing is simply run again."""
    log = tmp_path / "runs.log"
    task = Flaky(log=str(log), late=False)
    summary = sdp.build(task, task_options=lambda t: NO_WAIT)
    _, task_runs, _ = read(flow_run_id(summary))
    assert log.read_text().count("run") == 2
    assert task_runs[sdp.label(task)].state.type is StateType.COMPLETED
    assert task.load() == 42


def test_a_failing_task_fails_its_task_run_and_the_flow_run() -> None:
    """The task's own exception fails its task run, the flow run and the call."""
    root = explode(values=numbers(n=5))
    with pytest.raises(ValueError, match="cannot add up 5 values"):
        sdp.build(root)
    builds = sd.registry.builds(limit=1)
    run, task_runs, _ = read(uuid.UUID(builds[0].labels["prefect.flow_run_id"]))
    assert run.state.type is StateType.FAILED
    failed = task_runs[sdp.label(root)]
    assert failed.state.type is StateType.FAILED
    assert "cannot add up 5 values" in (failed.state.message or "")
    assert builds[0].status == "failed"


def test_a_build_inside_your_own_flow_joins_its_flow_run() -> None:
    """Two builds in one user flow: their task runs belong to that flow run."""

    @prefect.flow(name="users-own-flow")
    def nightly() -> tuple[sd.BuildSummary, sd.BuildSummary, str]:
        context = prefect.context.get_run_context()
        first = sdp.build(numbers(n=6))
        second = sdp.build(numbers(n=7))
        return first, second, str(context.flow_run.id)  # type: ignore[union-attr]

    first, second, run_id = nightly()
    assert str(flow_run_id(first)) == str(flow_run_id(second)) == run_id
    run, task_runs, _ = read(uuid.UUID(run_id))
    assert run.name and set(task_runs) == {sdp.label(numbers(n=6)), sdp.label(numbers(n=7))}


def test_the_flows_task_runner_decides_how_many_run_at_once() -> None:
    """With a thread pool of 2, two tasks run at once (they meet), never more."""
    tasks = [metered(i=i) for i in range(4)]
    sdp.build(tasks, task_runner=ThreadPoolTaskRunner(max_workers=2))
    assert METER.most == 2
    assert [t.load() for t in tasks] == [0, 1, 2, 3]


# Prefect's async client leaves a loopback socket to its server for the collector when
# asyncio.run() closes the loop; that is Prefect's, not ours.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_build_aio_runs_inside_an_async_flow() -> None:
    """`await sdp.build_aio(...)` inside an async flow adds task runs to it."""

    @prefect.flow
    async def async_flow() -> sd.BuildSummary:
        return await sdp.build_aio(total(a=numbers(n=8), b=numbers(n=9)))

    summary = asyncio.run(async_flow())
    run, task_runs, _ = read(flow_run_id(summary))
    assert run.state.type is StateType.COMPLETED and len(task_runs) == 3
