"""Every ```python block in README.md and docs/*.md runs, file by file.

The blocks of one file run in order in one fresh module namespace (registered in
`sys.modules` while it runs, so Pydantic and pickle can resolve the classes it
defines), in a temporary `STARDAG_HOME` with every other `STARDAG_*` variable
cleared. A block fenced as ```python notest is skipped; prefer blocks that run.
Tracebacks point at the Markdown file and line of the failing statement.
"""

from __future__ import annotations

import linecache
import os
import re
import sys
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stardag.task import _classes

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Pages whose blocks talk to a server that a session fixture starts.
NEEDS_FIXTURE = {"prefect.md": "prefect_server"}
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """One fenced python block: its 1-based number in the file and first code line."""

    number: int
    line: int
    source: str


def python_blocks(path: Path) -> list[Block]:
    """The runnable ```python blocks of a Markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    number = 0
    for match in FENCE.finditer(text):
        words = match["info"].split()
        if not words or words[0] != "python":
            continue
        number += 1
        if "notest" in words[1:]:
            continue
        line = text.count("\n", 0, match.start("body")) + 1
        blocks.append(Block(number, line, match["body"]))
    return blocks


def module_name(path: Path) -> str:
    """A module name unique per doc file: docs/getting-started.md -> docs_getting_started."""
    return "docs_" + re.sub(r"\W", "_", path.stem.lower())


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary STARDAG_HOME, no other STARDAG_* variables, an empty class registry."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("STARDAG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STARDAG_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    # Each doc file defines its own `get_range` etc. in namespace "": give it a registry
    # of its own so it cannot clash with task classes defined by other tests.
    monkeypatch.setattr(_classes, "_CLASSES", {})
    monkeypatch.setattr(_classes, "_MODULE_NAMESPACES", {})
    yield tmp_path
    # Doc blocks may set variables themselves (roots, STARDAG_FSYNC): undo all of it.
    os.environ.clear()
    os.environ.update(saved)


def python_view(path: Path, blocks: list[Block]) -> list[str]:
    """The Markdown file's lines with every line outside the blocks blanked: valid Python."""
    lines = ["\n"] * (path.read_text(encoding="utf-8").count("\n") + 1)
    for block in blocks:
        for offset, line in enumerate(block.source.splitlines(keepends=True)):
            lines[block.line - 1 + offset] = line
    return lines


def run_blocks(path: Path, blocks: list[Block]) -> None:
    """Run the blocks in one module; fail naming the block, its line and the error."""
    name = module_name(path)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    # `inspect.getsource()` of a class or function defined in the blocks (tracebacks, the
    # registry's source fingerprints) reads this Python view of the file, not the Markdown;
    # an entry without an mtime is never invalidated by linecache.checkcache().
    view = python_view(path, blocks)
    linecache.cache[str(path)] = (sum(map(len, view)), None, view, str(path))
    try:
        for block in blocks:
            # Pad with newlines so that traceback line numbers are the Markdown file's.
            code = compile("\n" * (block.line - 1) + block.source, str(path), "exec")
            failure = None
            try:
                exec(code, module.__dict__)
            except Exception as exc:  # noqa: BLE001  # reported with its block, below
                # Skip this function's own frame: the trace starts in the Markdown file.
                tb = exc.__traceback__
                trace = traceback.format_exception(type(exc), exc, tb.tb_next if tb else None)
                failure = (
                    f"{path.relative_to(ROOT)}: python block {block.number} "
                    f"(line {block.line}) failed: {exc!r}\n{''.join(trace)}"
                )
            if failure is not None:
                pytest.fail(failure, pytrace=False)
    finally:
        del sys.modules[name]
        linecache.cache.pop(str(path), None)


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_code_blocks_run(path: Path, isolated: Path, request: pytest.FixtureRequest) -> None:
    """Every python block of one Markdown file runs, in order, in one namespace."""
    if path.name in NEEDS_FIXTURE:
        request.getfixturevalue(NEEDS_FIXTURE[path.name])
    blocks = python_blocks(path)
    assert blocks, f"{path.relative_to(ROOT)} has no python blocks"
    run_blocks(path, blocks)


LINK = re.compile(r"\]\((?!https?://|#)(?P<target>[^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_relative_links_resolve(path: Path) -> None:
    """Every relative Markdown link points at a file or folder that exists."""
    text = path.read_text(encoding="utf-8")
    missing = [
        match["target"]
        for match in LINK.finditer(text)
        if not (path.parent / match["target"]).exists()
    ]
    assert not missing, f"{path.relative_to(ROOT)} links to missing paths: {missing}"
