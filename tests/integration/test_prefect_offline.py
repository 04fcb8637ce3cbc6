"""The Prefect integration's parts that need no server: errors and the artifact text."""

from __future__ import annotations

import pytest
from prefect_tasks import numbers, total

import stardag as sd
from stardag._errors import ExecutorError
from stardag.integration import prefect as sdp


def test_the_executor_outside_a_flow_run_says_how_to_use_it() -> None:
    """Without a flow run there is nothing to add task runs to: a clear error first."""
    with pytest.raises(ExecutorError, match=r"stardag.integration.prefect.build"):
        sd.build(numbers(n=2), task_executor=sdp.PrefectTaskExecutor())
    assert not numbers(n=2).complete()


def test_the_artifact_of_a_task_without_a_record_says_so() -> None:
    """A task whose completeness is its own has no digest to show, and says why."""
    text = sdp.describe(total(a=numbers(n=1), b=numbers(n=2)), None)
    assert "defined by the task's own `complete()`" in text
    assert "prefect_tests.total" in text
