"""Where a task's code lives, and a fingerprint of it that ignores cosmetics.

The fingerprint is blake3 of the source re-printed from its syntax tree with
docstrings removed: comments, blank lines, docstrings, quoting and line
wrapping do not change it; any change to what the code does does. It covers
the task's own function (`@sd.task`) or class body, not what that code calls.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from blake3 import blake3

# NEVER CHANGE: fingerprints already stored are derived from it.
_SOURCE_PREFIX = b"stardag:source:v1\x00"

T = TypeVar("T")

_CACHE: weakref.WeakKeyDictionary[type, str | None] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
# CPython before 3.11.8 (gh-106905) keeps ast.parse's recursion depth in interpreter-wide
# state: two threads parsing at once (the recorder's writer thread, and an import that
# pytest or a library parses on another thread) can fail with "SystemError: AST
# constructor recursion depth mismatch". Our parses go one at a time, and a parse that
# collides with someone else's is tried again.
_PARSE_LOCK = threading.Lock()
_PARSE_TRIES = 8  # about 0.6 s of backoff in all


def code_object(cls: type) -> Any:
    """What a task's code is: the plain function of an `@sd.task`, else the class."""
    return getattr(cls, "__stardag_func__", None) or cls


def code_location(cls: type) -> tuple[str, str]:
    """The module and qualified name a tool can import the task's code from."""
    code = code_object(cls)
    return code.__module__, code.__qualname__


def fingerprint(cls: type) -> str | None:
    """The fingerprint of a task class's code (cached per class); None without source."""
    with _LOCK:
        if cls in _CACHE:
            return _CACHE[cls]
    found = _fingerprint_of(code_object(cls))
    with _LOCK:
        _CACHE[cls] = found
    return found


def _fingerprint_of(code: Any) -> str | None:
    try:
        # For a class, inspect finds its source by parsing the whole module with ast.
        source = _retrying(inspect.getsource, code)
    except (OSError, TypeError):
        return None  # defined in a REPL or by exec(): no source to read
    return source_fingerprint(source)


def source_fingerprint(source: str) -> str | None:
    """The fingerprint of some Python source; None if it does not parse."""
    try:
        tree = _retrying(ast.parse, textwrap.dedent(source))
    except SyntaxError:
        return None
    _strip_docstrings(tree)
    return blake3(_SOURCE_PREFIX + ast.unparse(tree).encode()).hexdigest()


def _retrying(parse: Callable[[Any], T], arg: Any) -> T:
    """`parse(arg)`, one at a time, again when a parse on another thread collided with it."""
    for attempt in range(_PARSE_TRIES):
        with _PARSE_LOCK:
            try:
                return parse(arg)
            except SystemError:  # gh-106905: a concurrent parse elsewhere; not our input
                if attempt == _PARSE_TRIES - 1:
                    raise
        time.sleep(0.005 * 2**attempt)
    raise AssertionError("unreachable")


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if body and _is_docstring(body[0]):
            node.body = body[1:] or [ast.Pass()]


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )
