"""Modal: run selected stardag tasks as Modal functions, the rest locally.

```python
from stardag.build import InProcessTaskExecutor, RoutedTaskExecutor
from stardag.integration.modal import FunctionSettings, StardagApp

app = StardagApp("pipeline", workers={"gpu": FunctionSettings(image=image, gpu="A10G")})
executor = RoutedTaskExecutor(
    {"local": InProcessTaskExecutor(), "modal": app.executor(lambda task: "gpu")},
    router=lambda task: "modal" if isinstance(task, Fit) else "local",
)
with app.modal_app.run():
    sd.build(root, task_executor=executor)
```

Needs the extra: `pip install 'stardag[modal]'`. See docs/modal.md.
"""

from stardag.integration.modal._app import (
    FunctionSettings,
    ModalTaskExecutor,
    StardagApp,
    worker_function_name,
)
from stardag.integration.modal._payload import outcome_from, payload_for, run_payload

__all__ = [
    "FunctionSettings",
    "ModalTaskExecutor",
    "StardagApp",
    "outcome_from",
    "payload_for",
    "run_payload",
    "worker_function_name",
]
