"""The Stardag demo: a small machine-learning pipeline, built three times.

1. Build it: every task runs (unless an earlier run already stored its output).
2. Build it again: every output is already in the store, so nothing runs.
3. Change one parameter, the model's L2 regularisation, and build: only the tasks
   downstream of that parameter run; the data preparation is reused.

Run it with `scripts/demo` (`scripts/demo --fresh` for an empty temporary store).
It uses the default store, `~/.stardag/store` (or `$STARDAG_HOME/store`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from rich.console import Console
from rich.table import Table

import stardag as sd

sd.namespace("stardag_demo", __name__)

FIRST_L2 = 0.001
SECOND_L2 = 0.3


# -- the tasks ------------------------------------------------------------------------


@sd.task
def make_dataset(n_samples: int, n_features: int, seed: int) -> np.ndarray:
    """Synthetic binary classification data: the features, then the label in the last column.

    Features are on very different scales (so standardizing matters), and only
    about half of them carry signal (so regularisation matters).
    """
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_samples, n_features))
    true_weights = rng.normal(size=n_features) * (rng.random(n_features) < 0.5)
    logits = latent @ true_weights + rng.normal(scale=1.0, size=n_samples)
    labels = (logits > 0).astype(np.float64)
    scales = rng.uniform(0.1, 50.0, n_features)
    offsets = rng.normal(scale=10.0, size=n_features)
    return np.column_stack([latent * scales + offsets, labels])


@sd.task
def split(
    dataset: sd.Depends[np.ndarray],
    part: Literal["train", "test"],
    test_fraction: float,
    seed: int,
) -> np.ndarray:
    """The train or test rows of a seeded random split."""
    order = np.random.default_rng(seed).permutation(len(dataset))
    n_test = round(len(dataset) * test_fraction)
    rows = order[:n_test] if part == "test" else order[n_test:]
    return dataset[np.sort(rows)]


@sd.task
def fit_scaler(train: sd.Depends[np.ndarray]) -> np.ndarray:
    """Per-feature mean and standard deviation of the training features (2 x d)."""
    features = train[:, :-1]
    return np.stack([features.mean(axis=0), features.std(axis=0)])


@sd.task
def standardize(data: sd.Depends[np.ndarray], scaler: sd.Depends[np.ndarray]) -> np.ndarray:
    """The features scaled with the training statistics; the label column unchanged."""
    mean, std = scaler
    return np.column_stack([(data[:, :-1] - mean) / std, data[:, -1]])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _with_bias(features: np.ndarray) -> np.ndarray:
    return np.column_stack([features, np.ones(len(features))])


@sd.task
def fit_logistic_regression(
    train: sd.Depends[np.ndarray], l2: float, learning_rate: float, epochs: int
) -> np.ndarray:
    """Weights (bias last) by full-batch gradient descent on the L2-penalised log loss."""
    x, y = _with_bias(train[:, :-1]), train[:, -1]
    weights = np.zeros(x.shape[1])
    penalised = np.ones_like(weights)
    penalised[-1] = 0.0  # the bias is not regularised
    for _ in range(epochs):
        gradient = x.T @ (_sigmoid(x @ weights) - y) / len(y) + l2 * penalised * weights
        weights -= learning_rate * gradient
    return weights


def _roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The probability that a random positive scores above a random negative."""
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores)] = np.arange(1, len(scores) + 1)
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@sd.task
def evaluate(model: sd.Depends[np.ndarray], test: sd.Depends[np.ndarray]) -> dict[str, float]:
    """Test-set metrics of a fitted model."""
    x, y = _with_bias(test[:, :-1]), test[:, -1]
    p = np.clip(_sigmoid(x @ model), 1e-12, 1 - 1e-12)
    return {
        "accuracy": float(np.mean((p > 0.5) == y)),
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "roc_auc": _roc_auc(y, p),
        "weight_norm": float(np.linalg.norm(model[:-1])),
    }


class Report(sd.Task[str]):
    """A short text report: the model's settings (read from the upstream task) and metrics."""

    evaluation: sd.TaskLoads[dict[str, float]]

    def requires(self) -> sd.TaskStruct:
        return self.evaluation

    def run(self) -> str:
        model = self.evaluation.model  # type: ignore[attr-defined]  # an `evaluate` task
        settings = f"l2={model.l2:g}, learning_rate={model.learning_rate:g}, epochs={model.epochs}"
        metrics = self.evaluation.load()
        lines = [f"logistic regression ({settings})"]
        lines += [f"  {name:<12}{value:.4f}" for name, value in sorted(metrics.items())]
        return "\n".join(lines)


def pipeline(l2: float) -> Report:
    """The whole pipeline, declared (nothing runs): data, split, scaling, model, metrics."""
    data = make_dataset(n_samples=20_000, n_features=20, seed=7)
    train_raw = split(dataset=data, part="train", test_fraction=0.25, seed=7)
    test_raw = split(dataset=data, part="test", test_fraction=0.25, seed=7)
    scaler = fit_scaler(train=train_raw)
    train = standardize(data=train_raw, scaler=scaler)
    test = standardize(data=test_raw, scaler=scaler)
    model = fit_logistic_regression(train=train, l2=l2, learning_rate=0.5, epochs=300)
    return Report(evaluation=evaluate(model=model, test=test))


# -- watching a build ---------------------------------------------------------------------

COMPUTED, CACHED, FAILED, SKIPPED, NOT_VISITED = (
    "computed",
    "cache hit",
    "failed",
    "skipped",
    "not visited",
)


@dataclass
class TaskOutcome:
    """What one build did with one task."""

    task: sd.BaseTask
    outcome: str
    started: float | None = None
    ended: float | None = None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


class OutcomeCollector:
    """A build listener that records each task's outcome and duration.

    Events arrive from the build's worker threads, so the dict is guarded by a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.outcomes: dict[str, TaskOutcome] = {}

    def handle(self, event: sd.BuildEvent) -> None:
        task = event.task
        if task is None:
            return
        with self._lock:
            if event.kind is sd.EventKind.TASK_CACHED:
                self.outcomes[task.id] = TaskOutcome(task, CACHED)
            elif event.kind is sd.EventKind.TASK_STARTED:
                self.outcomes[task.id] = TaskOutcome(task, "running", started=event.time)
            elif event.kind is sd.EventKind.TASK_COMPLETED:
                self.outcomes[task.id].outcome = COMPUTED
                self.outcomes[task.id].ended = event.time
            elif event.kind is sd.EventKind.TASK_FAILED:
                self.outcomes.setdefault(task.id, TaskOutcome(task, FAILED)).outcome = FAILED
            elif event.kind is sd.EventKind.TASK_SKIPPED:
                self.outcomes[task.id] = TaskOutcome(task, SKIPPED)


@dataclass
class Phase:
    """One build of the demo: its summary and the outcome of every task in the DAG."""

    title: str
    summary: sd.BuildSummary
    outcomes: list[TaskOutcome] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(o.outcome == outcome for o in self.outcomes)

    def names(self, outcome: str) -> list[str]:
        return [type(o.task).get_name() for o in self.outcomes if o.outcome == outcome]


def dag(root: sd.BaseTask) -> list[sd.BaseTask]:
    """Every task `root` needs, dependencies before the tasks that use them."""
    ordered: dict[str, sd.BaseTask] = {}

    def visit(task: sd.BaseTask) -> None:
        if task.id not in ordered:
            for dep in sd.flatten_task_struct(task.requires()):
                visit(dep)
            ordered[task.id] = task

    visit(root)
    return list(ordered.values())


def build_phase(title: str, root: sd.BaseTask) -> Phase:
    """Build `root`, and say what happened to each task of its DAG."""
    collector = OutcomeCollector()
    summary = sd.build(root, listeners=[collector])
    outcomes = [
        collector.outcomes.get(task.id, TaskOutcome(task, NOT_VISITED)) for task in dag(root)
    ]
    return Phase(title, summary, outcomes)


# -- showing it -----------------------------------------------------------------------

STYLES = {COMPUTED: "bold yellow", CACHED: "green", NOT_VISITED: "dim", FAILED: "bold red"}


def describe(task: sd.BaseTask) -> str:
    """`name(param=value, upstream=<id prefix>, ...)`, leaving out the version."""
    params = []
    for name in type(task).model_fields:
        value = getattr(task, name)
        if isinstance(value, sd.BaseTask):
            params.append(f"{name}={value.id[:6]}…")
        elif name != "version":
            params.append(f"{name}={value!r}")
    return f"{type(task).get_name()}({', '.join(params)})"


def tally(names: list[str]) -> str:
    """`a, b (x2), c`: each name once, in order, with its count when above one."""
    counts = Counter(names)
    return ", ".join(f"{name} (x{n})" if n > 1 else name for name, n in counts.items()) or "none"


def show(console: Console, phase: Phase) -> None:
    table = Table(title=phase.title, title_justify="left", title_style="bold")
    table.add_column("task")
    table.add_column("id")
    table.add_column("outcome")
    table.add_column("duration", justify="right")
    for item in phase.outcomes:
        seconds = item.seconds
        table.add_row(
            describe(item.task),
            item.task.id[:12],
            f"[{STYLES.get(item.outcome, '')}]{item.outcome}[/]",
            "" if seconds is None else f"{seconds * 1000:.0f} ms",
        )
    console.print(table)
    console.print(f"build summary: {phase.summary}\n")


def explain(console: Console, phase: Phase, *, expected_work: str) -> None:
    """Say what the phase shows, or why it shows less than usual (an earlier run)."""
    if phase.summary.ran == 0:
        console.print(
            f"[bold]Nothing ran:[/] {expected_work} was already in the store from an earlier "
            "run on this machine. `scripts/demo --fresh` starts from an empty store.\n"
        )


@contextmanager
def fresh_home() -> Iterator[str]:
    """A temporary STARDAG_HOME for the duration of the block, removed afterwards."""
    home = tempfile.mkdtemp(prefix="stardag-demo-")
    previous = os.environ.get("STARDAG_HOME")
    os.environ["STARDAG_HOME"] = home
    try:
        yield home
    finally:
        if previous is None:
            del os.environ["STARDAG_HOME"]
        else:
            os.environ["STARDAG_HOME"] = previous
        shutil.rmtree(home, ignore_errors=True)


def run_demo(console: Console) -> list[Phase]:
    """The three builds, printed; returns them for inspection."""
    first, second = pipeline(FIRST_L2), pipeline(SECOND_L2)
    console.print(
        f"[bold]Stardag demo[/]: a logistic-regression pipeline of {len(dag(first))} tasks\n"
        f"store: {first.output().store.url}\n"
    )
    phases = [build_phase(f"1. Build the pipeline (l2={FIRST_L2:g})", first)]
    show(console, phases[-1])
    explain(console, phases[-1], expected_work="the whole pipeline")

    phases.append(build_phase("2. Build it again", first))
    show(console, phases[-1])
    if phases[-1].summary.ran == 0:
        console.print(
            "Every output is in the store, so nothing ran. The build checked the report, "
            "found it complete, and did not even look at the tasks upstream of it.\n"
        )

    phases.append(build_phase(f"3. Change one parameter: l2={FIRST_L2:g} -> {SECOND_L2:g}", second))
    show(console, phases[-1])
    changed = phases[-1]
    explain(console, changed, expected_work=f"the pipeline with l2={SECOND_L2:g}")
    if changed.summary.ran:
        console.print(
            f"Only what depends on l2 ran: {tally(changed.names(COMPUTED))}. "
            f"Cache hits: {tally(changed.names(CACHED))}. Not visited, because what needs "
            f"them was a cache hit: {tally(changed.names(NOT_VISITED))}.\n"
        )

    for report in (first, second):
        console.print(report.load(), "\n")
    show_lineage(console, second)
    return phases


def show_lineage(console: Console, report: sd.BaseTask) -> None:
    """What produced the final report, from the registry (`stardag lineage` prints the same)."""
    if os.environ.get("STARDAG_NO_REGISTRY", "") not in ("", "0"):
        return
    console.rule("lineage of the new report (sd.registry.lineage)")
    text = sd.registry.lineage(report).to_text()
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> list[Phase]:
    """Run the demo (`--fresh`: in a new temporary STARDAG_HOME); returns the three builds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fresh", action="store_true", help="use an empty temporary store (removed afterwards)"
    )
    args = parser.parse_args(argv)
    console = console or _console()
    if not args.fresh:
        return run_demo(console)
    with fresh_home():
        return run_demo(console)


def _console() -> Console:
    """On a terminal, its width; in a log or a pipe, wide enough that no table wraps a name."""
    return Console() if sys.stdout.isatty() else Console(width=200)


if __name__ == "__main__":
    main()
