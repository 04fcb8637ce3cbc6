"""Python's cyclic garbage collector held off while gc or verify reads a whole store.

Reading 100,000 action records allocates millions of dicts and lists, most of which
are kept until the command ends; each allocation burst makes the collector walk
every object still alive, which cost 2-3x the reading itself. Nothing these passes
build refers back to itself, so reference counting frees all of it; the collector
is turned back on (if it was on) when the pass ends, whatever happens. The `stardag gc`
and `stardag verify` commands hold it off for the whole command (one-shot processes):
turned on again right after the pass, it would first walk all that the pass left alive.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold off the cyclic collector for the block (nested uses are fine)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
