"""Build labels: what a build is known as elsewhere, kept on its registry row."""

from __future__ import annotations

import asyncio

import pytest

import stardag as sd
from stardag.build import labelled

sd.auto_namespace(__name__)


@sd.task
def double(i: int) -> int:
    return 2 * i


def test_labels_are_kept_on_the_build_row() -> None:
    """A build started inside `labelled` carries its labels; one outside carries none."""
    with labelled({"prefect.flow_run_id": "run-1"}), labelled({"team": "fits"}):
        inside = sd.build(double(i=1))
    outside = sd.build(double(i=2))
    assert sd.registry.build(inside.build_id).labels == {
        "prefect.flow_run_id": "run-1",
        "team": "fits",
    }
    assert sd.registry.build(outside.build_id).labels == {}


def test_labels_follow_a_build_started_inside_a_running_event_loop() -> None:
    """`sd.build` from a coroutine runs on a helper thread, which sees the caller's labels."""

    async def main() -> sd.BuildSummary:
        with labelled({"orchestrator": "notebook"}):
            return sd.build(double(i=3))

    summary = asyncio.run(main())
    assert sd.registry.build(summary.build_id).labels == {"orchestrator": "notebook"}


def test_labels_must_be_strings() -> None:
    """A label that is not str -> str is refused before any build sees it."""
    with pytest.raises(TypeError, match="str -> str"), labelled({"attempt": 1}):  # type: ignore[dict-item]
        pass
