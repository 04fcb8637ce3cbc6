"""Worker plugins the Dask tests install on their cluster (importable on the workers)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin


def stardag_home() -> str:
    """This process's STARDAG_HOME (run on each worker)."""
    return os.environ["STARDAG_HOME"]


class OwnHome(WorkerPlugin):
    """Give each worker a HOME and STARDAG_HOME of its own, apart from the coordinator's.

    A worker then shares nothing with the build but what the build tells it (its
    roots), as on another machine.
    """

    def __init__(self, base: str) -> None:
        self.base = base

    def setup(self, worker: Any) -> None:
        home = Path(self.base, str(worker.name))
        home.mkdir(parents=True, exist_ok=True)
        os.environ["HOME"] = str(home)
        os.environ["STARDAG_HOME"] = str(home / ".stardag")
        for name in list(os.environ):
            if name.startswith(("STARDAG_TARGET_ROOTS", "STARDAG_REGISTRY_URL")):
                del os.environ[name]


class S3Config(WorkerPlugin):
    """This worker's own fsspec configuration for S3 (as a machine's credentials would be)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def setup(self, worker: Any) -> None:
        import fsspec.config

        fsspec.config.conf["s3"] = dict(self.options)

    def teardown(self, worker: Any) -> None:
        import fsspec.config

        fsspec.config.conf.pop("s3", None)
