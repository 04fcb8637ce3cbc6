"""One Dask cluster for the Dask tests (all in one module): two worker processes on 127.0.0.1.

Module-scoped: its worker processes and threads are gone before the rest of the suite runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import distributed
import pytest


@pytest.fixture(scope="module")
def dask_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[distributed.Client]:
    """A client of a LocalCluster whose workers each have their own HOME and STARDAG_HOME.

    A worker that dies twice running one task makes the task fail (allowed-failures=1),
    so the fault tests stay short.
    """
    import dask
    from dask_support import OwnHome

    homes = tmp_path_factory.mktemp("dask-worker-homes")
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(
            processes=True,
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            # The scheduler still serves /health and /metrics: on a free port of 127.0.0.1,
            # not on 8787, which another cluster on this machine may hold.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )
    client = distributed.Client(cluster, set_as_default=False)
    client.register_plugin(OwnHome(str(homes)), name="own-home")
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def worker_homes(dask_client: distributed.Client) -> list[Path]:
    """The workers' own STARDAG_HOME folders."""
    from dask_support import stardag_home

    homes = dask_client.run(stardag_home)
    return [Path(home) for home in homes.values()]
