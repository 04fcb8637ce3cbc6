"""Tasks the Modal tests build: light ones run locally, `fit` goes to a Modal worker."""

from __future__ import annotations

import stardag as sd

sd.namespace("modal_tests", __name__)


@sd.task
def samples(n: int) -> list[float]:
    return [float(i) for i in range(n)]


@sd.task
def fit(data: sd.Depends[list[float]], degree: int) -> dict[str, float]:
    if degree < 0:
        raise ArithmeticError(f"degree {degree} is negative")
    mean = sum(data) / len(data)
    return {"degree": float(degree), "mean": mean}


@sd.task
def report(model: sd.Depends[dict[str, float]]) -> str:
    return f"mean {model['mean']:.2f} at degree {model['degree']:.0f}"


def on_modal(task: sd.BaseTask) -> str:
    """The router: fits to Modal, the rest in process."""
    return "modal" if isinstance(task, fit) else "local"
