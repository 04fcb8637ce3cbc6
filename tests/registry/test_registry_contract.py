"""The registry contract, run against SQLite on disk, SQLite in memory and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import stardag as sd

sd.auto_namespace(__name__)


@sd.task
def numbers(n: int) -> list[int]:
    return list(range(n))


@sd.task
def total(xs: sd.Depends[list[int]]) -> int:
    return sum(xs)


@sd.task
def largest(xs: sd.Depends[list[int]]) -> int:
    return max(xs)


@sd.task
def combine(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    return a * 100 + b


@sd.task
def echo(value: int) -> int:
    return value


TICKS: dict[str, int] = {}


@sd.task
def tick(key: str) -> int:
    """Not deterministic: returns how often it ran."""
    TICKS[key] = TICKS.get(key, 0) + 1
    return TICKS[key]


class Fanout(sd.Task[int]):
    """Yields `count` echo tasks (dynamic dependencies) and sums their outputs."""

    count: int

    def requires(self) -> Any:
        return numbers(n=self.count)

    def run(self) -> Any:
        deps = [echo(value=i) for i in range(self.count)]
        yield deps
        self.target().save(sum(d.load() for d in deps))


@pytest.fixture(params=["disk", "memory"])
def registry(request: pytest.FixtureRequest, registry_url: str) -> Iterator[sd.registry.Registry]:
    """A fresh registry: the backend's (a SQLite file, or PostgreSQL), or SQLite in memory."""
    url = registry_url if request.param == "disk" else "sqlite://"
    opened = sd.registry.Registry(url)
    yield opened
    opened.close()


def diamond() -> Any:
    src = numbers(n=5)
    return combine(a=total(xs=src), b=largest(xs=src))


def test_lineage_of_a_diamond_lists_each_task_once(registry: sd.registry.Registry) -> None:
    """Upstream lineage of a diamond has four nodes and four static edges."""
    top = diamond()
    sd.build(top, registry=registry)
    graph = sd.registry.lineage(top, registry=registry)
    assert set(graph.nodes) == {top.id, top.a.id, top.b.id, top.a.xs.id}
    assert len(graph.edges) == 4
    assert {edge.kind for edge in graph.edges} == {"static"}


def test_lineage_iterates_dependencies_first(registry: sd.registry.Registry) -> None:
    """Iterating a lineage graph yields each task after everything it depends on."""
    top = diamond()
    sd.build(top, registry=registry)
    order = [node.task_id for node in sd.registry.lineage(top, registry=registry)]
    assert order[0] == top.a.xs.id
    assert order[-1] == top.id


def test_downstream_lineage_reaches_every_consumer(registry: sd.registry.Registry) -> None:
    """Downstream of the diamond's source are both branches and the join."""
    top = diamond()
    sd.build(top, registry=registry)
    graph = sd.registry.lineage(top.a.xs, "down", registry=registry)
    assert set(graph.nodes) == {top.id, top.a.id, top.b.id, top.a.xs.id}


def test_lineage_nodes_carry_outputs_and_builds(registry: sd.registry.Registry) -> None:
    """Each node has its output digest, size, producing build and code fingerprint."""
    top = diamond()
    summary = sd.build(top, registry=registry)
    node = sd.registry.lineage(top, registry=registry)[top.id]
    record = top.target().record()
    assert record is not None
    assert (node.digest, node.size_raw, node.build_id) == (
        record.digest,
        record.size_raw,
        summary.build_id,
    )
    assert node.params == {"a": {"$task": top.a.id}, "b": {"$task": top.b.id}}
    assert node.fingerprint is not None and node.created is not None


def test_dynamic_dependencies_are_edges_marked_dynamic(registry: sd.registry.Registry) -> None:
    """Yielded tasks are lineage edges of kind "dynamic", requires() ones "static"."""
    task = Fanout(count=3)
    sd.build(task, registry=registry)
    graph = sd.registry.lineage(task, registry=registry)
    kinds = {edge.dep_id: edge.kind for edge in graph.dependencies(task.id)}
    assert kinds == {
        numbers(n=3).id: "static",
        **{echo(value=i).id: "dynamic" for i in range(3)},
    }


def test_lineage_by_digest_has_every_producer_as_root(registry: sd.registry.Registry) -> None:
    """Two tasks that wrote identical bytes are both roots of the digest's lineage."""
    seven, also_seven = echo(value=7), largest(xs=numbers(n=8))  # both output 7
    other = echo(value=8)
    sd.build([seven, also_seven, other], registry=registry)
    record = seven.target().record()
    assert record is not None
    graph = sd.registry.lineage(record.digest, registry=registry)
    assert set(graph.roots) == {seven.id, also_seven.id}
    assert other.id not in graph.nodes


def test_lineage_accepts_a_unique_id_prefix(registry: sd.registry.Registry) -> None:
    """A task id prefix names the task."""
    top = diamond()
    sd.build(top, registry=registry)
    assert sd.registry.lineage(top.id[:10], registry=registry).roots == (top.id,)


def test_lineage_of_an_unknown_task_is_an_error(registry: sd.registry.Registry) -> None:
    """A task the registry never saw raises TaskNotFoundError."""
    with pytest.raises(sd.TaskNotFoundError):
        sd.registry.lineage(echo(value=-1), registry=registry)


def test_depth_limits_the_walk(registry: sd.registry.Registry) -> None:
    """depth=1 reaches direct dependencies only; depth=0 the task alone."""
    top = diamond()
    sd.build(top, registry=registry)
    assert set(sd.registry.lineage(top, depth=1, registry=registry).nodes) == {
        top.id,
        top.a.id,
        top.b.id,
    }
    assert set(sd.registry.lineage(top, depth=0, registry=registry).nodes) == {top.id}


def test_history_is_newest_first_with_outcomes(registry: sd.registry.Registry) -> None:
    """A computed run and then a cache hit are listed newest first."""
    task = echo(value=1)
    sd.build(task, registry=registry)
    sd.build(task, registry=registry)
    runs = sd.registry.history(task, registry=registry)
    assert [run.outcome for run in runs] == ["cached", "computed"]
    assert runs[0].digest == runs[1].digest is not None


def test_history_shows_a_changed_digest_for_one_id(registry: sd.registry.Registry) -> None:
    """A task rebuilt to other bytes under the same id shows both digests, newest first."""
    task = tick(key="history")
    sd.build(task, registry=registry)
    task.target().store.delete_record(task.id)
    sd.build(task, registry=registry)
    runs = sd.registry.history(task, registry=registry)
    assert [run.outcome for run in runs] == ["computed", "computed"]
    assert runs[0].digest != runs[1].digest


def test_history_carries_the_environment(registry: sd.registry.Registry) -> None:
    """Each run names its build's host, user, Python and Stardag version."""
    task = echo(value=4)
    sd.build(task, registry=registry)
    (run,) = sd.registry.history(task, registry=registry)
    env = run.environment
    assert env.stardag_version == sd.__version__
    assert env.python_version and env.host and env.username and env.env_digest


def test_builds_are_counted_by_outcome(registry: sd.registry.Registry) -> None:
    """builds() lists the newest build first with its runs counted by outcome."""
    top = diamond()
    sd.build(top, registry=registry)
    sd.build(top, registry=registry)
    newest, first = sd.registry.builds(registry=registry)
    assert newest.counts == {"cached": 1}
    assert first.counts == {"computed": 4}
    assert newest.status == first.status == "succeeded"


def test_build_by_prefix_has_runs_and_packages(registry: sd.registry.Registry) -> None:
    """build(id prefix) returns the build with every run and the installed packages."""
    summary = sd.build(diamond(), registry=registry)
    found = sd.registry.build(summary.build_id[:8], registry=registry)
    assert found.id == summary.build_id
    assert len(found.runs) == 4
    assert found.environment.packages is not None
    assert any(p.startswith("stardag==") for p in found.environment.packages)


def test_producers_lists_every_task_that_wrote_the_bytes(registry: sd.registry.Registry) -> None:
    """producers(digest) names each producing task and the run that wrote it."""
    a, b = echo(value=7), largest(xs=numbers(n=8))
    summary = sd.build([a, b], registry=registry)
    record = a.target().record()
    assert record is not None
    found = sd.registry.producers(record.digest, registry=registry)
    assert {p.task_id for p in found} == {a.id, b.id}
    assert all(p.runs[0].build_id == summary.build_id for p in found)


def test_outputs_answers_many_ids_at_once(registry: sd.registry.Registry) -> None:
    """outputs(ids) maps each recorded task id to its output, skipping unknown ids."""
    top = diamond()
    sd.build(top, registry=registry)
    found = sd.registry.outputs([top.id, top.a.id, echo(value=99).id], registry=registry)
    assert set(found) == {top.id, top.a.id}


def test_explain_names_the_changed_parameter(registry: sd.registry.Registry) -> None:
    """explain() of a new variant says it would run and which parameter differs."""
    sd.build(echo(value=1), registry=registry)
    explanation = sd.registry.explain(echo(value=2), registry=registry)
    assert not explanation.complete
    assert [(d.kind, d.name, d.before, d.after) for d in explanation.differences] == [
        ("param", "value", 1, 2)
    ]


def test_reindex_restores_lineage_from_the_store(registry: sd.registry.Registry) -> None:
    """A registry rebuilt from the store's action records has the same lineage edges."""
    top = diamond()
    sd.build(top, registry=None)
    report = sd.registry.reindex(registry=registry)
    assert report.records == 4
    graph = sd.registry.lineage(top, registry=registry)
    assert len(graph.nodes) == 4 and len(graph.edges) == 4
    assert graph[top.id].digest is not None
