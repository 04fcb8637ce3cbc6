"""Build labels: where else a build is known, kept on its registry row.

An integration that drives a build (Prefect: the flow run's id) wraps the call
in `labelled({...})`; the recorder reads the labels once, as it writes the
build row, so they describe the build as it started. Labels live in a context
variable: they follow the build into its event loop and helper thread, and two
builds in two threads never see each other's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

_EMPTY: Mapping[str, str] = MappingProxyType({})
_LABELS: ContextVar[Mapping[str, str]] = ContextVar("stardag_build_labels", default=_EMPTY)


def current_labels() -> dict[str, str]:
    """The labels a build started here would carry (a copy)."""
    return dict(_LABELS.get())


@contextmanager
def labelled(labels: Mapping[str, str]) -> Iterator[None]:
    """Builds started inside carry `labels`, on top of any set around this one."""
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"build labels are str -> str, got {key!r}: {value!r}")
    token = _LABELS.set(MappingProxyType({**_LABELS.get(), **labels}))
    try:
        yield
    finally:
        _LABELS.reset(token)
