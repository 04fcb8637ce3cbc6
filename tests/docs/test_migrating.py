"""docs/migrating-from-stardag.md: its table of 0.28.0's names agrees with what we export,
and its coverage figures agree with its table."""

from __future__ import annotations

import importlib
import re
from collections import Counter
from pathlib import Path

import typer

from stardag.cli import app

PAGE = Path(__file__).resolve().parents[2] / "docs" / "migrating-from-stardag.md"
SECTION = re.compile(r"^### `(?P<module>[^`]+)`$", re.MULTILINE)
ROW = re.compile(r"^\| `(?P<name>[^`]+)` \| (?P<status>[a-z 0-9]+) \|", re.MULTILINE)
USABLE = ("same", "alias", "different")


def table() -> dict[str, list[tuple[str, str]]]:
    text = PAGE.read_text(encoding="utf-8")
    sections = list(SECTION.finditer(text))
    found: dict[str, list[tuple[str, str]]] = {}
    for here, after in zip(sections, [*sections[1:], None], strict=True):
        body = text[here.end() : after.start() if after else len(text)]
        found[here["module"]] = [(m["name"], m["status"]) for m in ROW.finditer(body)]
    return found


def test_every_usable_name_exists_here() -> None:
    """A name marked same, alias or different can be imported from the same module."""
    missing = []
    commands = set(typer.main.get_group(app).commands)
    for module, rows in table().items():
        for name, status in rows:
            if status not in USABLE:
                continue
            if module.endswith("(command line)"):
                if name.removeprefix("stardag ") not in commands and status != "different":
                    missing.append(name)
            elif not hasattr(importlib.import_module(module), name):
                missing.append(f"{module}.{name}")
    assert missing == []


def test_coverage_figures_match_the_table() -> None:
    """The counts in the page's prose are the table's."""
    statuses = Counter(status for rows in table().values() for _, status in rows)
    assert set(statuses) <= {*USABLE, "not supported"}
    text = " ".join(PAGE.read_text(encoding="utf-8").split())
    usable = sum(statuses[s] for s in USABLE)
    expected = (
        f"**{sum(statuses.values())}** public names",
        f"**{usable}** work here: {statuses['same']} the same, {statuses['alias']} under",
        f"and {statuses['different']} on purpose differently.",
        f"The other {statuses['not supported']} belong",
    )
    for phrase in expected:
        assert phrase in text, phrase
