"""`stardag pin`, `unpin` and `pins`."""

from __future__ import annotations

import json

import cli_tasks
from cli_support import invoke, shell

import stardag as sd


def test_pin_lists_and_unpin() -> None:
    """A pin by module:attr and one by prefix; both listed; one removed."""
    sd.build(cli_tasks.both)
    assert invoke("pin", "report", "cli_tasks:pipeline").exit_code == 0
    assert invoke("pin", "other", cli_tasks.other.id[:10]).exit_code == 0
    found = json.loads(invoke("pins", "--json").stdout)
    assert {p["name"]: p["task_id"] for p in found} == {
        "report": cli_tasks.pipeline.id,
        "other": cli_tasks.other.id,
    }
    removed = invoke("unpin", "other")
    assert removed.exit_code == 0 and cli_tasks.other.id in removed.stdout
    assert [p.name for p in sd.registry.pins()] == ["report"]


def test_a_pin_name_is_replaced_by_a_new_pin() -> None:
    """Pinning a name again moves it to the new task."""
    sd.build(cli_tasks.both)
    invoke("pin", "latest", "cli_tasks:pipeline")
    invoke("pin", "latest", "cli_tasks:other")
    assert [(p.name, p.task_id) for p in sd.registry.pins()] == [("latest", cli_tasks.other.id)]


def test_unpinning_an_unknown_name_is_bad_input() -> None:
    """No such pin: one line, exit 2."""
    sd.build(cli_tasks.summed)
    result = invoke("unpin", "nothing")
    assert result.exit_code == 2 and "no pin named 'nothing'" in result.stderr


def test_a_pin_by_module_attr_creates_the_registry() -> None:
    """Pinning a task named in code needs no earlier build."""
    result = invoke("pin", "future", "cli_tasks:other")
    assert result.exit_code == 0, result.output
    assert sd.registry.pins()[0].task_id == cli_tasks.other.id


def test_pins_from_a_fresh_shell() -> None:
    """The console script pins, lists and unpins."""
    sd.build(cli_tasks.summed)
    assert shell("pin", "sum", "cli_tasks:summed").returncode == 0
    assert "sum" in shell("pins").stdout
    assert shell("unpin", "sum").returncode == 0
    assert sd.registry.pins() == []


def test_pin_and_unpin_a_list_of_tasks() -> None:
    """`module:attr` naming a list pins each task as NAME.0, NAME.1; `unpin NAME` frees all."""
    sd.build(cli_tasks.both)
    result = invoke("pin", "release", "cli_tasks:both")
    assert result.exit_code == 0, result.output
    pinned = {p.name: p.task_id for p in sd.registry.pins()}
    assert pinned == {"release.0": cli_tasks.pipeline.id, "release.1": cli_tasks.other.id}
    assert invoke("pin", "release", "cli_tasks:other").exit_code == 0
    assert {p.name for p in sd.registry.pins()} == {"release"}
    invoke("pin", "release", "cli_tasks:both")
    assert invoke("unpin", "release").exit_code == 0 and sd.registry.pins() == []
