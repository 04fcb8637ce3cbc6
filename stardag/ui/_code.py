"""The fingerprint of a task's code as it is on disk now, found without importing it.

The dashboard flags an output whose code changed since it was built. Importing the
user's module in a web server would run it, so this reads the source file instead:
the module is looked up as a file along the import path (and the directory the
build ran in), the definition named by the task's qualified name is cut out of the
parsed file, decorators included, as `inspect.getsource` would, and fingerprinted
exactly as a build does (`registry._fingerprint.source_fingerprint`). Invariant:
nothing here executes user code; a module it cannot find, or a definition nested
in a function, is simply unknown (None), never a guess.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from stardag.registry._fingerprint import source_fingerprint

_MAX_SOURCE = 4 << 20  # a larger "module" is not source anyone wrote by hand


@dataclass(frozen=True)
class CodeNow:
    """Where a task's code is now, and its fingerprint."""

    path: str
    fingerprint: str | None


def code_now(module: str | None, qualname: str | None, where: Iterable[str] = ()) -> CodeNow | None:
    """The code of `module`.`qualname` on disk, searched in `where` and then `sys.path`."""
    if not module or not qualname or module == "__main__" or "<locals>" in qualname:
        return None
    path = _module_file(module, [*where, *sys.path])
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            source = handle.read(_MAX_SOURCE + 1)
        if len(source) > _MAX_SOURCE:
            return None
        text = source.decode("utf-8")
        tree = ast.parse(text)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None
    node = _definition(tree, qualname.split("."))
    if node is None:
        return CodeNow(path, None)
    return CodeNow(path, source_fingerprint(_segment(text, node)))


def _module_file(module: str, roots: Iterable[str]) -> str | None:
    parts = module.split(".")
    for root in dict.fromkeys(r or os.getcwd() for r in roots):
        base = os.path.join(root, *parts)
        for candidate in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(candidate):
                return candidate
    return None


Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _definition(tree: ast.Module | Definition, names: list[str]) -> Definition | None:
    """The last top-level definition of `names[0]` (as Python binds it), then inward."""
    found: Definition | None = None
    for statement in tree.body:
        if isinstance(statement, Definition) and statement.name == names[0]:
            found = statement
    if found is None or len(names) == 1:
        return found
    return _definition(found, names[1:])


def _segment(text: str, node: Definition) -> str:
    """The definition's lines, from its first decorator to its last line."""
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    lines = text.splitlines(keepends=True)
    return "".join(lines[first - 1 : node.end_lineno])
