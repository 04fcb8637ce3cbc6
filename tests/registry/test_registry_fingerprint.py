"""Source fingerprints: comments, docstrings and blank lines do not change them; code does."""

from __future__ import annotations

from typing import Any

import stardag as sd
from stardag.registry._fingerprint import code_location, fingerprint, source_fingerprint

sd.auto_namespace(__name__)

PLAIN = """
def f(x):
    return x + 1
"""

DECORATED = '''
def f(x):
    """Add one."""

    # the answer
    return (x +
            1)
'''


@sd.task
def add_one(x: int) -> int:
    """Add one."""
    return x + 1


class Halve(sd.Task[float]):
    value: float

    def run(self) -> Any:
        return self.value / 2


def test_comments_docstrings_and_blank_lines_do_not_count() -> None:
    """Two sources that differ only cosmetically have one fingerprint."""
    assert source_fingerprint(PLAIN) == source_fingerprint(DECORATED)


def test_a_change_to_the_code_changes_the_fingerprint() -> None:
    """Changing what the code does changes the fingerprint."""
    assert source_fingerprint(PLAIN) != source_fingerprint(PLAIN.replace("+ 1", "+ 2"))


def test_indented_source_is_fingerprinted_like_top_level_source() -> None:
    """A method's indented source parses as it stands."""
    assert source_fingerprint("    " + PLAIN.strip().replace("\n", "\n    ")) == (
        source_fingerprint(PLAIN)
    )


def test_a_function_task_is_fingerprinted_by_its_function() -> None:
    """An @sd.task's fingerprint and location are those of the plain function."""
    source = "@sd.task\n" + PLAIN.strip().replace("f(x)", "add_one(x: int) -> int")
    assert fingerprint(add_one) == source_fingerprint(source)
    assert code_location(add_one) == (__name__, "add_one")


def test_a_task_class_is_fingerprinted_by_its_class_body() -> None:
    """A class task's fingerprint covers its class; its location is the class."""
    assert fingerprint(Halve) is not None
    assert code_location(Halve) == (__name__, "Halve")


def test_code_without_source_has_no_fingerprint() -> None:
    """A class made by exec() has no source to read: None, not an error."""
    namespace: dict[str, Any] = {}
    exec("class Made:\n    pass\n", namespace)  # on purpose: no source file
    assert fingerprint(namespace["Made"]) is None
