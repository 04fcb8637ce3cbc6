"""Run a build's tasks on a Dask distributed cluster: `DaskExecutor` (extra `stardag[dask]`).

    import stardag as sd
    from stardag.dask import DaskExecutor

    sd.build(task, task_executor=DaskExecutor("tcp://scheduler:8786"))

Workers need stardag and the tasks' code importable, and the build's store
reachable (a shared disk or an object store such as S3); see docs/scale-out.md.
"""

from stardag.dask._executor import DaskExecutor

__all__ = ["DaskExecutor"]
