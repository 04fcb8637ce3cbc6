"""Tasks the dashboard tests build: a small DAG, a failure, outputs of every serializer."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

import stardag as sd

sd.auto_namespace(__name__)  # namespace "ui_tasks": no clash with other tests' tasks


@sd.task
def numbers(limit: int) -> list[int]:
    return list(range(limit))


@sd.task
def total(values: sd.Depends[list[int]], label: str = "") -> int:
    return sum(values)


@sd.task
def report(a: sd.Depends[int], b: sd.Depends[int], title: str) -> str:
    return f"{title}: {a} + {b} = {a + b}\n"


@sd.task
def boom(x: sd.Depends[int]) -> int:
    raise ValueError(f"boom at {x}")


@sd.task
def slow(seconds: float, tag: str) -> str:
    time.sleep(seconds)
    return tag


@sd.task
def matrix(rows: int, cols: int) -> np.ndarray:
    return np.arange(rows * cols, dtype=np.float64).reshape(rows, cols)


@sd.task
def frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"n": range(rows), "square": [i * i for i in range(rows)]})


@sd.task
def blob(size: int) -> bytes:
    return bytes(range(256)) * (size // 256)


class Point:
    """A plain class: stored with pickle."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


@sd.task
def point(x: int) -> Point:
    return Point(x, x + 1)


@sd.task
def text(repeat: int) -> str:
    return "line of text\n" * repeat


def dag() -> sd.BaseTask:
    """report <- total <- numbers, twice."""
    return report(
        a=total(values=numbers(limit=10)),
        b=total(values=numbers(limit=20), label="second"),
        title="Sum",
    )
