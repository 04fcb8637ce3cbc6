"""Tasks for the `stardag build` tests of issue 12: a task class, a callable, a plain task."""

from __future__ import annotations

import stardag as sd

sd.auto_namespace(__name__)


class Power(sd.Task[int]):
    """Made from `--param base=2 --param exponent=10` on the command line."""

    base: int
    exponent: int = 2

    def run(self) -> int:
        return int(self.base**self.exponent)


@sd.task
def word(text: str) -> str:
    return text


@sd.task
def shout(text: sd.Depends[str]) -> str:
    return text.upper()


def make_tasks() -> list[sd.BaseTask]:
    """A zero-argument callable returning tasks."""
    return [word(text="a"), word(text="b")]


plain = shout(text=word(text="hello"))
not_a_task = 42
