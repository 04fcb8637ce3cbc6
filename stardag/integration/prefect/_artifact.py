"""The markdown that describes one completed stardag task on its Prefect task run.

Pure text from the task and its action record (no Prefect import), so the same
description can be checked without a server. It names everything a reader of
Prefect's UI needs to find the output again outside Prefect: the task id, its
parameters as they are hashed, the output's digest and sizes, and the command
that shows its lineage from our registry.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from stardag.task._base import BaseTask

if TYPE_CHECKING:
    from stardag.store._record import ActionRecord

ARTIFACT_KEY_PREFIX = "stardag-"


def artifact_key(task: BaseTask) -> str:
    """The artifact key of a task: lowercase letters, digits and dashes, as Prefect wants."""
    return f"{ARTIFACT_KEY_PREFIX}{task.id[:16]}"


def describe(task: BaseTask, record: ActionRecord | None, *, cached: bool = False) -> str:
    """Markdown: name, id, parameters, output digest and size, and the lineage command."""
    cls = type(task)
    qualified = f"{cls.get_namespace()}.{cls.get_name()}" if cls.get_namespace() else cls.get_name()
    spec = task.spec()
    lines = [
        f"### {qualified}",
        "",
        "| | |",
        "|---|---|",
        f"| task id | `{task.id}` |",
        f"| version | `{spec['version'] or '-'}` |",
    ]
    if record is not None:
        lines += [
            f"| output digest | `{record.digest}` |",
            f"| output size | {record.size_raw:,} bytes ({record.size_stored:,} stored, "
            f"{record.serializer}) |",
        ]
    else:
        lines.append("| output | defined by the task's own `complete()` |")
    lines.append(f"| this run | {'cache hit: complete before it ran' if cached else 'computed'} |")
    params = json.dumps(spec["params"], indent=2, sort_keys=True)
    lines += [
        "",
        "**Parameters** (as hashed; an upstream task appears as its id):",
        "",
        "```json",
        params,
        "```",
        "",
        f"Lineage: `stardag lineage {task.id[:12]}`",
    ]
    return "\n".join(lines) + "\n"
