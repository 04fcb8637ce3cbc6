"""Ordinary user code that must pass `mypy --strict` (checked by scripts/test)."""

from typing import Annotated

import stardag as sd


@sd.task
def double(x: int) -> int:
    return 2 * x


class Total(sd.Task[int]):
    parts: tuple[sd.SubClass[sd.Task[int]], ...]
    threads: Annotated[int, sd.StardagField(significant=False)] = 1

    def requires(self) -> sd.TaskStruct:
        return list(self.parts)

    def run(self) -> int:
        return sum(part.load() for part in self.parts)


def main() -> int:
    total = Total(parts=(double(x=1), double(x=2)))
    summary: sd.BuildSummary = sd.build(total)
    value: int = total.load()
    return value + summary.ran
