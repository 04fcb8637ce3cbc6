"""The package layout keeps its shape: no import cycles, no import from a lower part up.

Every import counts, at module level, inside functions and under `TYPE_CHECKING`: a lazy
import that dodges a cycle is still a piece in the wrong room.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import stardag

PACKAGE = Path(stardag.__file__).parent

# Lowest first. A module may import its own layer or lower ones; parts in one layer
# (the integrations) may not import each other. Keep docs/layout.md in step.
LAYERS: list[tuple[str, ...]] = [
    ("stardag._errors", "stardag._hashing", "stardag._config", "stardag._version"),
    ("stardag.store",),
    ("stardag.task",),
    ("stardag.registry",),
    ("stardag.remote",),
    ("stardag.build",),
    ("stardag.maintenance",),
    ("stardag.dask", "stardag.integration", "stardag.ui"),
    ("stardag",),  # the public surface, which the command line uses
    ("stardag.cli",),
    ("stardag.__main__",),
]
INTEGRATIONS = 7


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The stardag modules that `name` imports (a `from pkg import mod` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("stardag"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base]).rstrip(".")
            if not base.startswith("stardag"):
                continue
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
            yield from subs or [base]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: {m for m in _imports(name, path, known) if m in known and m != name}
        for name, path in modules.items()
    }


def _layer(module: str) -> tuple[int, str]:
    best: tuple[int, str] | None = None
    for rank, parts in enumerate(LAYERS):
        for part in parts:
            if (module == part or module.startswith(part + ".")) and (
                best is None or len(part) > len(best[1])
            ):
                best = (rank, part)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and docs/layout.md"
    return best


def test_every_module_has_a_layer() -> None:
    """Each module of the package belongs to exactly one named part."""
    for module in _modules():
        _layer(module)


def test_no_import_goes_up_a_layer() -> None:
    """A lower part never imports a higher one (the store never imports tasks or the build)."""
    upward = []
    for module, targets in _graph().items():
        rank, part = _layer(module)
        for target in targets:
            target_rank, target_part = _layer(target)
            side_by_side = target_rank == rank == INTEGRATIONS and target_part != part
            if target_rank > rank or side_by_side:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_only_cli_imports_cli() -> None:
    """Nothing but `stardag.cli` (and `python -m stardag`) imports the command line."""
    outside = [
        f"{m} -> {t}"
        for m, targets in _graph().items()
        for t in targets
        if t.startswith("stardag.cli")
        and not m.startswith("stardag.cli")
        and m != "stardag.__main__"
    ]
    assert outside == []


def test_no_import_cycles() -> None:
    """No module reaches itself through its imports."""
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == []
