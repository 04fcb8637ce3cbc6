"""The build a task is running in: `get_current_build_id()` and `get_current_build_context()`.

The invariant: inside a task's `run()`/`run_aio()` (on the event loop or a worker
thread of the engine) the context names the enclosing build; outside any build it
is None. Carried by a `ContextVar` that the engine sets and copies into its threads.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BuildContext:
    """The enclosing build: its id (hex, as in the registry), and its settings.

    Attributes:
        build_id: the build's id.
        plan_id: always None (the released stardag's registry plans are not ours).
        deployment_id: always None (likewise).
        settings: always empty (likewise).
    """

    build_id: str
    plan_id: str | None = None
    deployment_id: str | None = None
    settings: Mapping[str, str] = field(default_factory=dict)


current_build_context: contextvars.ContextVar[BuildContext | None] = contextvars.ContextVar(
    "stardag_current_build_context", default=None
)


def get_current_build_context() -> BuildContext | None:
    """The context of the build running the calling task, or None outside a build."""
    return current_build_context.get()


def get_current_build_id() -> str | None:
    """The id of the build running the calling task, or None outside a build."""
    context = current_build_context.get()
    return None if context is None else context.build_id
