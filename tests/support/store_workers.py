"""What store tests run in other processes (forked from one preloaded forkserver)."""

from __future__ import annotations

import multiprocessing
import os
import random
from multiprocessing.context import ForkServerContext
from typing import Any

import stardag as sd
from stardag.store._store import Store

_PRELOAD = ["stardag", "stardag.store._store", "s3fs", "store_workers"]


def forkserver() -> ForkServerContext:
    """A forkserver context whose server has already imported stardag and s3fs."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def put(url: str, options: dict[str, Any] | None, data: bytes) -> str:
    """Put `data` as a blob in the store at `url`; its digest."""
    return Store(url, storage_options=options).put_bytes(data).digest


class Payload(sd.Task[bytes]):
    """An output of one of four shapes: inline, small blob, large compressible, large raw."""

    seed: int
    index: int
    kind: str

    def make(self) -> bytes:
        """The bytes this task outputs."""
        rng = random.Random(f"{self.seed}-{self.index}")
        if self.kind == "inline":
            return rng.randbytes(100)
        if self.kind == "small":
            return rng.randbytes(64 << 10)
        if self.kind == "compressible":
            return rng.randbytes(256) * (24 << 10)  # 6 MiB
        return rng.randbytes(5 << 20)

    def run(self) -> bytes:
        return self.make()


KINDS = ["inline", "small", "compressible", "raw"]


def save_forever(root: str, options: dict[str, Any] | None, seed: int, ready: Any) -> None:
    """Save one output after another into `root` until killed."""
    if options:
        import fsspec

        fsspec.config.conf["s3"] = options
    os.environ["STARDAG_TARGET_ROOTS__DEFAULT"] = root
    rng = random.Random(seed)
    ready.set()
    index = 0
    while True:
        task = Payload(seed=seed, index=index, kind=rng.choice(KINDS))
        task.output().save(task.make())
        index += 1
