"""`stardag status`, `stardag show` and `stardag cat`: one task, or one blob."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Annotated, Any

import typer

from stardag.cli._app import app
from stardag.cli._common import (
    TASK_HELP,
    JsonFlag,
    command,
    console,
    fail,
    print_json,
    registry,
    size,
    stores,
    task_id,
    verdict_json,
    when,
)


@app.command()
@command
def status(
    task: Annotated[str, typer.Argument(metavar="TASK", help=TASK_HELP)],
    as_json: JsonFlag = False,
) -> None:
    """Is a task complete, what did its last run do, what did its last audit say."""
    from stardag.maintenance._describe import status as describe

    facts = _facts(task, describe, as_json)
    if facts is None:
        return
    out = console()
    mark = "[green]complete[/green]" if facts["complete"] else "[yellow]not complete[/yellow]"
    out.print(f"{_label(facts)}: {mark}")
    if facts["digest"]:
        out.print(f"  output   {facts['digest']} in {facts['store']}")
    run = facts["last_run"]
    if run:
        out.print(
            f"  last run {run.outcome} at {run.started:%Y-%m-%d %H:%M:%S}Z "
            f"in build {run.build_id[:8]}"
        )
        if run.outcome == "failed":
            error = f"{(run.error_type or 'error').rsplit('.', 1)[-1]}: {run.error_message}"
            out.print(f"  error    {' '.join(error.split())}", markup=False, highlight=False)
    audit = facts["last_audit"]
    if audit:
        out.print(f"  audit    {audit.verdict} at {when(audit.audited)}")


def _facts(task: str, describe: Any, as_json: bool) -> dict[str, Any] | None:
    """The facts `describe` gives about TASK; printed as JSON (and None) with --json."""
    known = registry()
    facts: dict[str, Any] = describe(task_id(task, known), known, stores())
    if as_json:
        if "last_audit" in facts:
            facts = facts | {"last_audit": verdict_json(facts["last_audit"])}
        print_json(facts)
        return None
    return facts


def _label(facts: dict[str, Any]) -> str:
    name = facts.get("name") or "?"
    namespace = facts.get("namespace")
    family = f"{namespace}.{name}" if namespace else name
    return f"[bold]{family}[/bold] {facts['task_id']}"


@app.command()
@command
def show(
    task: Annotated[str, typer.Argument(metavar="TASK", help=TASK_HELP)],
    as_json: JsonFlag = False,
) -> None:
    """A task's spec, output digest and sizes, producing build, code and a preview."""
    from stardag.maintenance._describe import show as describe

    facts = _facts(task, describe, as_json)
    if facts is None:
        return
    out = console()
    out.print(_label(facts))
    if facts["spec"] is not None:
        out.print("[bold]spec[/bold]")
        out.print(json.dumps(facts["spec"], indent=2, sort_keys=True), markup=False)
    _print_output(facts)
    _print_origin(facts)
    if facts["preview"] is not None:
        out.print("[bold]value[/bold]")
        out.print("  " + facts["preview"], markup=False)
    run = facts["last_run"]
    if run is not None and run.outcome == "failed":
        from stardag.cli._history import print_failure

        out.print("[bold]last run[/bold]")
        print_failure(run)


def _print_output(facts: dict[str, Any]) -> None:
    out = console()
    output = facts["output"]
    if output is None and facts["complete"]:  # a TargetTask: its own complete() says so
        out.print("[green]complete[/green]: its own target exists (it has no store output)")
        return
    if output is None:
        out.print("[yellow]no output in the store[/yellow]")
        return
    where = "inline in its record" if output["inline"] else facts["store"]
    out.print("[bold]output[/bold]")
    out.print(f"  digest     {output['digest']}")
    out.print(f"  serializer {output['serializer']}, {output['compression']}")
    out.print(
        f"  size       {size(output['size_raw'])} raw, {size(output['size_stored'])} stored"
        f" ({where})"
    )
    out.print(f"  created    {output['created']}")


def _print_origin(facts: dict[str, Any]) -> None:
    out = console()
    build = facts["produced_by"]
    if build:
        env = build.environment
        git = f", git {env.git_commit[:10]}" if env.git_commit else ""
        dirty = " (dirty)" if env.git_dirty else ""
        out.print("[bold]produced by[/bold]")
        out.print(
            f"  build {build.id[:8]} at {build.started:%Y-%m-%d %H:%M:%S}Z by "
            f"{env.username}@{env.host}{git}{dirty}, Python {env.python_version}"
        )
    if facts["module"] or facts["fingerprint"]:
        out.print("[bold]code[/bold]")
        out.print(f"  {facts['module']}:{facts['qualname']}")
        out.print(f"  fingerprint {facts['fingerprint'] or '-'}")


@app.command()
@command
def cat(
    key: Annotated[
        str, typer.Argument(metavar="TASK|DIGEST", help=TASK_HELP + " Or a blob digest.")
    ],
) -> None:
    """Write a task's output (or a blob), verified, as raw bytes to stdout."""
    from stardag.maintenance._describe import find_record

    everywhere = stores()
    known = registry() if _registry_exists() else None
    key = key if ":" in key else key.lower()  # ids and digests in either case
    if len(key) == 64 and not _is_task(key, known):
        _cat_blob(key, everywhere, known)
        return
    found = task_id(key, known)
    store, record = find_record(found, everywhere)
    if store is None or record is None:
        fail(f"task {found} has no output in the store; build it first")
    if record.inline is not None or record.serializer == "directory":
        sys.stdout.buffer.write(store.read_output(record))
    else:
        _copy_blob(store, record.digest, found)
    sys.stdout.buffer.flush()


def _registry_exists() -> bool:
    from stardag.registry._existing import exists

    return exists()


def _is_task(key: str, known: Any) -> bool:
    from stardag.maintenance._resolve import find_task_ids

    return bool(find_task_ids(key, known, stores()))


def _cat_blob(digest: str, everywhere: list[Any], known: Any) -> None:
    for store in everywhere:
        if store.has_blob(digest):
            _copy_blob(store, digest, None)
            sys.stdout.buffer.flush()
            return
    inline = _inline_output(digest, everywhere, known)
    if inline is None:
        fail(f"no task id or blob {digest} in the store")
    sys.stdout.buffer.write(inline)
    sys.stdout.buffer.flush()


def _inline_output(digest: str, everywhere: list[Any], known: Any) -> bytes | None:
    """A small output kept inside a producer's action record (it has no blob file)."""
    if known is None:
        return None
    import stardag.registry
    from stardag.maintenance._describe import find_record

    for producer in stardag.registry.producers(digest, registry=known):
        store, record = find_record(producer.task_id, everywhere)
        if store is not None and record is not None and record.digest == digest:
            return bytes(store.read_output(record))
    return None


def _copy_blob(store: Any, digest: str, owner: str | None) -> None:
    """Every blob is verified before a byte is written: a corrupt one writes nothing.

    Small blobs are read whole; a large one is read twice, streaming, so memory stays
    small: checked to the end, then written (and checked again as it goes out).
    """
    from stardag.store._store import SMALL_BLOB

    if store.stat_blob(digest).size <= SMALL_BLOB:
        sys.stdout.buffer.write(store.read_blob(digest, owner))
        return
    with store.open_blob(digest, owner) as reader:
        reader.verify()
    with store.open_blob(digest, owner) as reader:
        shutil.copyfileobj(reader, sys.stdout.buffer, 1 << 20)
        reader.verify()
