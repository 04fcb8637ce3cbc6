"""Prefect: run a stardag build as a Prefect flow, each incomplete task a task run.

```python
from stardag.integration import prefect as sdp

summary = sdp.build(root)            # makes a flow and runs it
```

Inside your own `@flow`, `sdp.build(root)` adds its task runs to that flow run.
Needs the extra: `pip install 'stardag[prefect]'`. See docs/prefect.md.
"""

from stardag.integration.prefect._artifact import artifact_key, describe
from stardag.integration.prefect._executor import PrefectTaskExecutor, label
from stardag.integration.prefect._flow import FLOW_NAME, build, build_aio, build_flow

__all__ = [
    "FLOW_NAME",
    "PrefectTaskExecutor",
    "artifact_key",
    "build",
    "build_aio",
    "build_flow",
    "describe",
    "label",
]
