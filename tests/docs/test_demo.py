"""The demo (scripts/demo_pipeline.py) shows cache hits and a partial rebuild, every time."""

from __future__ import annotations

import importlib.util
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from rich.console import Console

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo_pipeline.py"


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The demo module, imported from its file, with an empty temporary STARDAG_HOME."""
    monkeypatch.setenv("STARDAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STARDAG_TARGET_ROOTS", raising=False)
    monkeypatch.delenv("STARDAG_TARGET_ROOTS__DEFAULT", raising=False)
    spec = importlib.util.spec_from_file_location("demo_pipeline", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_pipeline"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["demo_pipeline"]


def run(demo: ModuleType, *argv: str) -> tuple[list[Any], str]:
    """Run the demo's main() with these arguments; its phases and what it printed."""
    out = io.StringIO()
    phases = demo.main(list(argv), console=Console(file=out, width=120))
    return phases, out.getvalue()


def test_first_build_computes_every_task(demo: ModuleType) -> None:
    """In an empty store the first build runs all nine tasks."""
    first, _, _ = run(demo)[0]
    assert (first.summary.ran, first.summary.already_complete) == (9, 0)
    assert first.count(demo.COMPUTED) == 9


def test_second_build_is_one_cache_hit(demo: ModuleType) -> None:
    """Building again checks only the complete root and runs nothing."""
    _, second, _ = run(demo)[0]
    assert (second.summary.ran, second.summary.already_complete) == (0, 1)
    assert second.names(demo.CACHED) == ["Report"]
    assert second.count(demo.NOT_VISITED) == 8


def test_changing_l2_reruns_only_its_downstream(demo: ModuleType) -> None:
    """A new l2 reruns fit, evaluate and report; the prepared data are cache hits."""
    _, _, changed = run(demo)[0]
    assert changed.summary.ran == 3
    assert changed.names(demo.COMPUTED) == ["fit_logistic_regression", "evaluate", "Report"]
    assert changed.names(demo.CACHED) == ["standardize", "standardize"]
    assert sorted(changed.names(demo.NOT_VISITED)) == [
        "fit_scaler",
        "make_dataset",
        "split",
        "split",
    ]


def test_rerun_on_the_same_store_says_everything_was_built(demo: ModuleType) -> None:
    """A second demo run on the same store finds every output and says so."""
    run(demo)
    phases, output = run(demo)
    assert [phase.summary.ran for phase in phases] == [0, 0, 0]
    assert "already in the store from an earlier run" in output


def test_fresh_uses_and_removes_a_temporary_home(demo: ModuleType) -> None:
    """--fresh builds everything in a new home, leaves nothing behind, and restores the env."""
    run(demo)
    phases, output = run(demo, "--fresh")
    assert [phase.summary.ran for phase in phases] == [9, 0, 3]
    store = output.split("store: ", 1)[1].split("\n", 1)[0].strip()
    assert "stardag-demo-" in store and not Path(store).exists()


def test_reports_show_both_models(demo: ModuleType) -> None:
    """The printed reports name both regularisation strengths and their metrics."""
    _, output = run(demo)
    assert f"l2={demo.FIRST_L2:g}" in output and f"l2={demo.SECOND_L2:g}" in output
    assert output.count("accuracy") == 2


def test_tables_do_not_wrap_names_when_output_is_not_a_terminal(
    demo: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a log or a pipe, each task's label stays on one line (no 80-column wrapping)."""
    demo.main([])
    out = capsys.readouterr().out
    assert "fit_logistic_regression(train=" in out
    label = next(line for line in out.splitlines() if "fit_logistic_regression(train=" in line)
    cell = label.split("│")[1].strip()
    assert cell.startswith("fit_logistic_regression(") and cell.endswith("epochs=300)")


def test_readme_says_how_to_get_the_command_on_the_path() -> None:
    """After scripts/demo, the README's set-up tells how to run `stardag` from a shell."""
    readme = (DEMO.parent.parent / "README.md").read_text()
    setup = readme[readme.index("## Set up") : readme.index("## A short tour")]
    assert "source .venv/bin/activate" in setup and ".venv/bin/stardag" in setup
