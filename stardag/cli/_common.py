"""What every command shares: error handling, exit codes, the registry and stores, output.

`command` wraps a command function: a `StardagError` that means bad input (an
unknown or ambiguous task, a malformed reference, a missing registry) becomes one
line on stderr and exit code 2; any other `StardagError` one line and exit code 1.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from stardag.registry import Registry
    from stardag.registry._lite import LiteRegistry
    from stardag.store._store import Store

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
TASK_HELP = "A task id, a unique id prefix, or module:attribute."
TASKS_HELP = "A task id, a unique id prefix, or module:attribute (a task or a list of tasks)."


class CliError(Exception):
    """A one-line error for the user, with the exit code to end with."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Stop the command with a one-line error."""
    raise CliError(message, code)


def command(func: F) -> F:
    """Turn Stardag's errors into one line and an exit code (see the module docstring)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CliError as exc:
            _die(str(exc), exc.code)
        except Exception as exc:
            from stardag._errors import StardagError

            if not isinstance(exc, StardagError):
                raise
            _die(_one_line(exc), EXIT_BAD_INPUT if _is_bad_input(exc) else EXIT_FAILED)

    return wrapper  # type: ignore[return-value]  # same signature, by functools.wraps


def _is_bad_input(exc: BaseException) -> bool:
    from stardag import _errors

    bad = (
        _errors.TaskReferenceError,
        _errors.TaskNotFoundError,
        _errors.AmbiguousTaskIdError,
        _errors.RegistryNotFoundError,
        _errors.NoGcRootsError,
        _errors.InvalidKeyError,
        _errors.ConfigError,  # a malformed setting, an unconfigured root key
        _errors.UnknownRemoteError,
        _errors.SigningKeyError,  # a malformed public key given to trust, a damaged key file
    )
    return isinstance(exc, bad)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _die(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"stardag: error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


# -- registry and stores -----------------------------------------------------------------------
def registry(create: bool = False) -> Registry:
    """The configured registry; unless `create`, it must exist already."""
    if create:
        from stardag.registry import open as open_registry

        return open_registry()
    from stardag.registry._existing import open_existing

    return open_existing()


def lite_registry() -> LiteRegistry | None:
    """The configured registry through `sqlite3` where it is a plain SQLite file that
    exists, else None (then `registry()`): for bulk reads that must not pay for
    importing SQLAlchemy (see `stardag.registry._gcreads`)."""
    from stardag.registry._lite import open_existing_plain

    return open_existing_plain()


def store(root: str = "default") -> Store:
    """The store of a root key, as configured now."""
    from stardag._config import target_root
    from stardag.store._store import store_for

    return store_for(target_root(root))


def stores() -> list[Store]:
    """Every configured store, the default first."""
    from stardag._config import target_roots
    from stardag.store._store import store_for

    roots = target_roots()
    keys = sorted(roots, key=lambda k: (k != "default", k))
    return [store_for(roots[k]) for k in keys]


def task_id(reference: str, known: Registry | None = None) -> str:
    """The task id a TASK argument names."""
    from stardag.maintenance._resolve import resolve_task_id

    return resolve_task_id(reference, known, stores())


def task_ids(reference: str, known: Registry | None = None) -> list[str]:
    """The task ids a TASK argument names: `module:attr` may name a list of tasks."""
    from stardag.maintenance._resolve import is_import_reference, tasks_named

    if is_import_reference(reference):
        return [task.id for task in tasks_named(reference)]
    return [task_id(reference, known)]


# -- parsing -----------------------------------------------------------------------------------
def duration(text: str, what: str) -> float:
    """Seconds in a duration such as `90`, `30m`, `1h`, `7d` or `2w`."""
    from stardag.maintenance._settings import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"{what}: {exc}")


def fraction(text: str) -> float:
    """A fraction in (0, 1] from `10%` or `0.1`."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        fail(f"--sample {text!r} is not a percentage such as 10% (or a fraction such as 0.1)")
    if not (0 < value <= 1) or math.isnan(value):
        fail(f"--sample {text!r} must be more than 0% and at most 100%")
    return value


# -- output ------------------------------------------------------------------------------------
def console() -> Console:
    """A rich console on stdout (no colour, and wide, when stdout is not a terminal)."""
    from rich.console import Console

    wide = None if sys.stdout.isatty() else 200  # logs and pipes: no wrapping at 80 columns
    return Console(highlight=False, width=wide)


def print_json(data: Any) -> None:
    """Print data (dataclasses, datetimes and all) as indented JSON on stdout."""
    sys.stdout.write(json.dumps(jsonable(data), indent=2, sort_keys=True, default=str) + "\n")


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples, sets and datetimes as plain JSON data."""
    import dataclasses
    import datetime

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def verdict_json(verdict: Any) -> dict[str, Any] | None:
    """An audit verdict as JSON data, its time in ISO 8601 like every other time."""
    if verdict is None:
        return None
    return {**verdict.__dict__, "audited": iso(verdict.audited)}


def size(count: float) -> str:
    """Bytes for people: 1.2 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def when(seconds: float | None) -> str:
    """A local time for people, or '-'."""
    if seconds is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def iso(seconds: float | None) -> str | None:
    """An ISO 8601 UTC time for JSON, or None."""
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
