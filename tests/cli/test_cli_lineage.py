"""`stardag lineage`: trees, Mermaid, dot and JSON, upstream and down."""

from __future__ import annotations

import json

import cli_tasks
import pytest
from cli_support import invoke, shell

import stardag as sd


@pytest.fixture(autouse=True)
def built() -> None:
    """The pipeline, built and recorded."""
    sd.build(cli_tasks.pipeline)


def test_the_tree_shows_the_upstream_once_per_task() -> None:
    """`numbers` feeds two tasks: printed once in full, then referred to."""
    result = invoke("lineage", "cli_tasks:pipeline")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("cli_tasks.report")
    assert sum("cli_tasks.numbers" in line for line in lines) == 2
    assert sum("(see above)" in line for line in lines) == 1


def test_down_shows_what_used_a_task() -> None:
    """Downstream of `numbers`: `total` and `scaled`, then `report`."""
    result = invoke("lineage", cli_tasks.base.id[:12], "--down", "--format", "json")
    graph = json.loads(result.stdout)
    names = {node["name"] for node in graph["nodes"]}
    assert names == {"numbers", "total", "scaled", "report"}


def test_depth_limits_the_walk() -> None:
    """One level up from `report`: its two direct dependencies only."""
    result = invoke("lineage", "cli_tasks:pipeline", "--depth", "1", "--json")
    assert len(json.loads(result.stdout)["nodes"]) == 3


def test_mermaid_and_dot_draw_every_edge() -> None:
    """Both text formats carry the four edges of the pipeline."""
    mermaid = invoke("lineage", "cli_tasks:pipeline", "--format", "mermaid").stdout
    dot = invoke("lineage", "cli_tasks:pipeline", "--format", "dot").stdout
    assert mermaid.startswith(("graph", "flowchart")) and mermaid.count("-->") == 4
    assert dot.lstrip().startswith("digraph") and dot.count("->") == 4


def test_both_directions_from_the_middle() -> None:
    """`--both` from `scaled` reaches `numbers` up and `report` down."""
    result = invoke("lineage", cli_tasks.pipeline.big.id, "--both")
    up, down = result.stdout.split("downstream")
    assert "cli_tasks.numbers" in up and "cli_tasks.report" in down


def test_lineage_from_a_fresh_shell() -> None:
    """The console script draws the tree."""
    done = shell("lineage", cli_tasks.pipeline.id)
    assert done.returncode == 0 and "cli_tasks.numbers" in done.stdout, done.stderr


def test_lineage_of_an_output_digest_names_its_producers() -> None:
    """A digest, like in sd.registry.lineage: the tree of the task that produced those bytes."""
    digest = sd.registry.outputs([cli_tasks.summed.id])[cli_tasks.summed.id].digest
    for reference in (digest, digest[:16], digest[:16].upper()):
        result = invoke("lineage", reference)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"cli_tasks.total {cli_tasks.summed.id[:12]}")


def test_lineage_of_a_list_of_tasks_has_a_root_for_each() -> None:
    """`module:attr` naming a list, as `stardag build` takes: one tree per task."""
    sd.build(cli_tasks.other)
    found = json.loads(invoke("lineage", "cli_tasks:both", "--json").stdout)
    assert found["roots"] == [cli_tasks.pipeline.id, cli_tasks.other.id]
    text = invoke("lineage", "cli_tasks:both").stdout
    assert text.count("cli_tasks.report") == 1 and "cli_tasks.total" in text


def test_labels_show_the_parameters_that_tell_tasks_apart() -> None:
    """Tree, Mermaid and dot name each task with the parameters that distinguish it."""
    sd.build(cli_tasks.extended)
    tree = invoke("lineage", "cli_tasks:pipeline").stdout
    assert f"cli_tasks.numbers(limit=3000) {cli_tasks.base.id[:12]}" in tree
    assert "cli_tasks.scaled(factor=2)" in tree
    both = [cli_tasks.numbers(limit=3000), cli_tasks.numbers(limit=5)]
    sd.build(both)
    chart = sd.registry.lineage(both).to_mermaid()
    assert "cli_tasks.numbers(limit=3000)<br/>" in chart
    assert "cli_tasks.numbers(limit=5)<br/>" in chart
    dot = sd.registry.lineage(both).to_dot()
    assert "cli_tasks.numbers(limit=5)\\n" in dot


def test_tasks_of_one_family_show_only_what_differs() -> None:
    """Two `total`s differ only by their upstream: each shows it, by a short id."""
    sd.build(cli_tasks.other)
    tree = sd.registry.lineage([cli_tasks.summed, cli_tasks.other]).to_text()
    assert f"cli_tasks.total(values={cli_tasks.base.id[:6]}…)" in tree
    assert f"cli_tasks.total(values={cli_tasks.other.values.id[:6]}…)" in tree
