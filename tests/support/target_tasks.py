"""A task that judges its own completeness (an `sd.TargetTask`), for the CLI tests."""

from __future__ import annotations

import stardag as sd


class Report(sd.TargetTask[sd.FileTarget]):
    """Complete once its text file exists; it has no output in the store."""

    title: str

    def target(self) -> sd.FileTarget:
        return sd.get_file_target(f"reports/{self.title}.txt")

    def run(self) -> None:
        with self.target().open("w") as handle:
            handle.write(self.title)


report = Report(title="q3")
