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
import weakref
from typing import Any

from blake3 import blake3

# NEVER CHANGE: fingerprints already stored are derived from it.
_SOURCE_PREFIX = b"stardag:source:v1\x00"

_CACHE: weakref.WeakKeyDictionary[type, str | None] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


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
        source = inspect.getsource(code)
    except (OSError, TypeError):
        return None  # defined in a REPL or by exec(): no source to read
    return source_fingerprint(source)


def source_fingerprint(source: str) -> str | None:
    """The fingerprint of some Python source; None if it does not parse."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return None
    _strip_docstrings(tree)
    return blake3(_SOURCE_PREFIX + ast.unparse(tree).encode()).hexdigest()


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
