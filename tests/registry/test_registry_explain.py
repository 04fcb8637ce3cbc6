"""explain(): why a task is complete or would run, and what differs from its nearest run."""

from __future__ import annotations

import datetime
import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import stardag as sd
from stardag.store._store import blob_path

sd.auto_namespace(__name__)


@sd.task
def scale(value: int, factor: int = 2) -> int:
    return value * factor


@sd.task
def parity(x: sd.Depends[int]) -> int:
    return x % 2


@sd.task
def big(n: int) -> bytes:
    return b"x" * n


@sd.task(version="1")
def versioned(value: int) -> int:
    return value


def test_a_built_task_is_complete_and_names_its_run() -> None:
    """A built task is complete; the explanation names the run that wrote its output."""
    task = scale(value=1)
    summary = sd.build(task)
    explanation = sd.registry.explain(task)
    assert explanation.complete
    assert explanation.produced_by is not None
    assert explanation.produced_by.build_id == summary.build_id
    assert "holds its record" in explanation.reason


def test_a_new_variant_would_run_and_names_each_difference() -> None:
    """Against the nearest run, the differing parameters are listed."""
    sd.build(scale(value=1, factor=2))
    explanation = sd.registry.explain(scale(value=1, factor=3))
    assert not explanation.complete
    assert "no action record" in explanation.reason
    assert [(d.kind, d.name, d.before, d.after) for d in explanation.differences] == [
        ("param", "factor", 2, 3)
    ]


def test_the_nearest_run_is_the_one_with_fewest_differences() -> None:
    """Of several earlier variants, the one differing in fewest parameters is compared."""
    sd.build(scale(value=5, factor=2))
    sd.build(scale(value=9, factor=9))  # more recent, but differs in both parameters
    explanation = sd.registry.explain(scale(value=5, factor=3))
    assert explanation.previous is not None
    assert explanation.previous.task_id == scale(value=5, factor=2).id


def test_a_version_bump_is_a_difference() -> None:
    """A changed version is reported as such."""
    sd.build(versioned(value=1))
    explanation = sd.registry.explain(versioned(value=1, version="2"))
    assert [(d.kind, d.before, d.after) for d in explanation.differences] == [("version", "1", "2")]


def test_an_upstream_change_with_the_same_bytes_says_so() -> None:
    """A changed dependency that produced the same bytes is reported as equal bytes."""
    sd.build(parity(x=scale(value=2, factor=2)))  # upstream output: 4
    sd.build(scale(value=1, factor=4))  # also 4
    explanation = sd.registry.explain(parity(x=scale(value=1, factor=4)))
    (difference,) = explanation.differences
    assert (difference.kind, difference.name) == ("upstream", "x")
    assert "same output bytes" in difference.note


def test_an_upstream_change_with_other_bytes_shows_both_digests() -> None:
    """A changed dependency with other output bytes shows the digest change."""
    sd.build(parity(x=scale(value=2, factor=2)))  # upstream output: 4
    sd.build(scale(value=3, factor=2))  # 6
    explanation = sd.registry.explain(parity(x=scale(value=3, factor=2)))
    (difference,) = explanation.differences
    before, after = (sd.registry.outputs([t.id]) for t in (scale(value=2), scale(value=3)))
    assert difference.note == (
        "its value: 2 -> 3; "
        f"output {before[scale(value=2).id].digest[:12]} -> {after[scale(value=3).id].digest[:12]}"
    )


def test_a_missing_blob_means_it_would_run(stardag_home: Path) -> None:
    """A record whose blob is gone is not complete, and the reason says so."""
    task = big(n=10_000)
    sd.build(task)
    record = task.target().record()
    assert record is not None
    (stardag_home / "store" / blob_path(record.digest)).unlink()
    explanation = sd.registry.explain(task)
    assert not explanation.complete
    assert "gone" in explanation.reason


def test_explain_accepts_a_recorded_task_id() -> None:
    """A task id (or prefix) is explained from what the registry and store hold."""
    task = scale(value=7)
    sd.build(task)
    explanation = sd.registry.explain(task.id[:12])
    assert explanation.task_id == task.id and explanation.complete


CODE = """
import stardag as sd

sd.namespace("explain_code", __name__)


@sd.task
def shout(text: str) -> str:
    return text.upper(){suffix}


@sd.task
def count(text: sd.Depends[str]) -> int:
    return len(text)
"""


def test_changed_code_under_the_same_id_is_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Code changed since the output was written: complete, but flagged as changed."""
    module = _write_module(tmp_path, monkeypatch, suffix="")
    sd.build(module.shout(text="a"))
    module = _write_module(tmp_path, monkeypatch, suffix=' + "!"')
    explanation = sd.registry.explain(module.shout(text="a"))
    assert explanation.complete
    assert explanation.code_changed is True
    assert "bump `version`" in str(explanation)


def _write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str) -> Any:
    path = tmp_path / "explain_code_mod.py"
    path.write_text(textwrap.dedent(CODE.format(suffix=suffix)))
    monkeypatch.syspath_prepend(str(tmp_path))
    if "explain_code_mod" in sys.modules:
        importlib.invalidate_caches()
        return importlib.reload(sys.modules["explain_code_mod"])
    return importlib.import_module("explain_code_mod")


def test_upstream_code_changed_since_its_output_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upstream task's code changed: explain of the downstream task names it."""
    module = _write_module(tmp_path, monkeypatch, suffix="")
    sd.build(module.count(text=module.shout(text="a")))
    module = _write_module(tmp_path, monkeypatch, suffix=' + "!"')
    upstream = module.shout(text="a")
    for subject in (module.count(text=upstream), module.count(text=upstream).id):
        explanation = sd.registry.explain(subject)
        assert explanation.complete and not explanation.code_changed
        assert explanation.upstream_code_changed == (f"explain_code.shout {upstream.id[:12]}",)
        assert "upstream code changed" in str(explanation)


class Settings(BaseModel):
    lr: float
    layers: list[int]


@sd.task
def configured(settings: Settings, day: datetime.date, tags: tuple[str, ...]) -> int:
    return len(tags)


def test_parameters_are_named_and_shown_as_the_user_wrote_them() -> None:
    """Paths without encoding tags (`settings.layers[1]`), values as Python writes them."""
    sd.build(configured(settings=Settings(lr=0.1, layers=[1, 2]), day=_day(2024), tags=("a",)))
    changed = configured(settings=Settings(lr=0.1, layers=[1, 3]), day=_day(2025), tags=("b",))
    explanation = sd.registry.explain(changed)
    assert [(d.name, d.before, d.after) for d in explanation.differences] == [
        ("day", _day(2024), _day(2025)),
        ("settings.layers[1]", 2, 3),
        ("tags[0]", "a", "b"),
    ]
    text = str(explanation)
    assert "param day: datetime.date(2024, 1, 1) -> datetime.date(2025, 1, 1)" in text
    assert "$" not in text


def _day(year: int) -> datetime.date:
    return datetime.date(year, 1, 1)


def test_an_upstream_difference_names_the_upstream_parameter() -> None:
    """Not only "upstream x: task a -> task b": which of its parameters changed."""
    sd.build(parity(x=scale(value=2)))
    (difference,) = sd.registry.explain(parity(x=scale(value=3))).differences
    assert difference.kind == "upstream" and "its value: 2 -> 3" in difference.note
