"""Claims in batches: what becomes ready together is claimed in one statement, what comes
next is claimed ahead, and releases go out together (SQLite and PostgreSQL).

Each test counts the claimer's calls into the real registry (a spy around the real
claim and release functions, which still run), never the clock: tasks that must not
finish early wait for an event the spy sets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import stardag as sd
from stardag.registry import _claims, _lite

sd.namespace("claims_batching_test", __name__)

SEEN = threading.Event()  # the spy saw the claim the tasks below wait for
WATCHED: list[str] = []  # the task id whose claim sets SEEN
WAIT = 120.0  # seconds: only a broken claimer makes a task wait this long


class Spy:
    """Every claim and release the build's claimer sends, in order."""

    def __init__(self) -> None:
        self.claimed: list[list[str]] = []
        self.released: list[tuple[list[str], dict[str, str]]] = []


@pytest.fixture(params=["sqlite", "postgresql"])
def spy(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, stardag_home: object
) -> Iterator[Spy]:
    """A registry on each backend, its claim and release calls recorded."""
    if request.param == "postgresql":
        monkeypatch.setenv("STARDAG_REGISTRY_URL", request.getfixturevalue("postgres_url"))
    seen = Spy()
    for module in (_claims, _lite):
        claim, release = module.claim, module.release

        def claiming(conn: Any, ids: Any, *args: Any, _claim: Any = claim) -> Any:
            seen.claimed.append(sorted(set(ids)))
            if WATCHED and WATCHED[0] in ids:
                SEEN.set()
            return _claim(conn, ids, *args)

        def releasing(conn: Any, holder: Any, done: Any, failed: Any, _rel: Any = release) -> Any:
            if done or failed:
                seen.released.append((list(done), dict(failed)))
            return _rel(conn, holder, done, failed)

        monkeypatch.setattr(module, "claim", claiming)
        monkeypatch.setattr(module, "release", releasing)
    SEEN.clear()
    WATCHED.clear()
    yield seen
    SEEN.clear()
    WATCHED.clear()


@sd.task
def held_leaf(i: int) -> int:
    assert SEEN.wait(WAIT), "the claim the test waits for never went out"
    return i


@sd.task
def pair(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    return a + b


@sd.task
def failing_leaf(i: int) -> int:
    assert SEEN.wait(WAIT), "the claim the test waits for never went out"
    raise ValueError(f"leaf {i} fails")


@sd.task
def watcher(i: int) -> int:
    """Wait, inside the build, until the watched task's claim is released."""
    registry = sd.registry.open()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        rows = {r["task_id"]: r for r in registry.read(_claims.holders)}
        if rows.get(WATCHED[0], {}).get("state") == "released":
            return i
        time.sleep(0.01)
    raise AssertionError("the claim taken ahead was not released while the build ran")


def _levels(leaves: list[sd.Task[int]]) -> list[list[sd.Task[int]]]:
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([pair(a=below[j], b=below[j + 1]) for j in range(0, len(below), 2)])
    return levels


LAZY = sd.ClaimConfig(ttl=1800.0, heartbeat=900.0, poll=900.0, max_poll=900.0)


def test_ready_tasks_are_claimed_in_one_batch_and_the_rest_ahead(spy: Spy) -> None:
    """Eight leaves ready together: one claim; each level above: one claim, before it is ready."""
    levels = _levels([held_leaf(i=i) for i in range(8)])
    root = levels[-1][0]
    WATCHED.append(root.id)  # the leaves finish only once the root is claimed
    summary = sd.build(root, claims=LAZY)
    assert summary.ran == 15
    assert spy.claimed == [sorted(t.id for t in level) for level in levels]


def test_finished_tasks_are_released_together(spy: Spy) -> None:
    """With a long release delay, every claim goes back in one release, as the build ends."""
    levels = _levels([held_leaf(i=i) for i in range(8)])
    WATCHED.append(levels[-1][0].id)
    sd.build(levels[-1][0], claims=LAZY)
    assert len(spy.released) == 1
    done, failed = spy.released[0]
    assert sorted(done) == sorted(t.id for level in levels for t in level) and failed == {}
    rows = sd.registry.open().read(_claims.holders)
    assert {r["state"] for r in rows} == {"released"} and len(rows) == 15


def test_a_claim_taken_ahead_goes_back_when_a_dependency_fails(spy: Spy) -> None:
    """The dependent of a failed task, claimed ahead, is released while the build goes on."""
    bad, watching = failing_leaf(i=1), watcher(i=2)
    root = pair(a=bad, b=watching)
    WATCHED.append(root.id)  # the leaf fails once its dependent is claimed ahead
    config = sd.ClaimConfig(ttl=1800.0, heartbeat=900.0, poll=0.01, max_poll=0.1)
    summary = sd.build(root, claims=config, fail_mode=sd.FailMode.CONTINUE, max_workers=2)
    assert (summary.ran, summary.failed, summary.skipped) == (1, 1, 1)
    assert spy.claimed == [sorted([bad.id, watching.id]), [root.id]]
    rows = {r["task_id"]: r for r in sd.registry.open().read(_claims.holders)}
    assert rows[root.id]["state"] == "released"
    assert rows[bad.id]["state"] == "failed" and "leaf 1 fails" in rows[bad.id]["error"]


def test_a_burst_of_ready_tasks_is_claimed_in_bounded_batches(
    spy: Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ready tasks beyond WANTED_BATCH wait for the next statement: the 50,000 leaves of
    a 100,000-task tree are not claimed (and their rows read back) all at once."""
    from stardag.build import _claims as build_claims

    monkeypatch.setattr(build_claims, "WANTED_BATCH", 3)
    levels = _levels([held_leaf(i=i) for i in range(8)])
    leaves = {t.id for t in levels[0]}
    WATCHED.append(levels[-1][0].id)  # the leaves finish only once the root is claimed
    summary = sd.build(levels[-1][0], claims=LAZY)
    assert summary.ran == 15
    bursts = [ids for ids in spy.claimed if set(ids) <= leaves]
    assert sorted(i for ids in bursts for i in ids) == sorted(leaves)
    assert max(len(ids) for ids in bursts) == 3
