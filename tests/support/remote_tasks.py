"""Tasks the remote tests share, in-process and from the two-machine subprocesses.

Imported as the top-level module `remote_tasks` (the tests directory on the path),
so its namespace and task ids are the same in every process. `main()` is one
"machine": build the DAG, optionally push, and print what happened as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import stardag as sd

sd.auto_namespace(__name__)


@sd.task
def numbers(limit: int) -> list[int]:
    """Big enough (over the inline limit) to live in a blob of its own."""
    if os.environ.get("REMOTE_TASKS_FORBID_RUN"):
        raise RuntimeError("this machine must not compute anything")
    return list(range(limit))


@sd.task
def total(values: sd.Depends[list[int]]) -> int:
    return sum(values)


@sd.task
def scaled(values: sd.Depends[list[int]], factor: int) -> list[int]:
    return [v * factor for v in values]


@sd.task
def report(plain: sd.Depends[int], big: sd.Depends[list[int]]) -> dict[str, int]:
    return {"total": plain, "big": sum(big)}


class Opaque:
    """A plain class: only pickle can store it."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.n == self.n

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


@sd.task
def pickled(n: int) -> Opaque:
    """An output only pickle can store."""
    return Opaque(n)


def dag() -> Any:
    """A small diamond: numbers feeds total and scaled, both feed report."""
    base = numbers(limit=3000)
    return report(plain=total(values=base), big=scaled(values=base, factor=3))


def main() -> None:
    root = dag()
    summary = sd.build(root)
    out: dict[str, Any] = {
        "ran": summary.ran,
        "remote_hits": summary.remote_hits,
        "value": root.load(),
    }
    if "push" in sys.argv[1:]:
        out["pushed"] = sd.push([root]).records_sent
    if "lineage" in sys.argv[1:]:
        graph = sd.registry.lineage(root)
        out["lineage"] = sorted(graph.nodes)
    print(json.dumps(out))
