"""Executors side by side, ratios in one run: in process, a process pool, Dask.

    python scripts/bench/executors.py [--n 16] [--seconds 0.25] [--trivial 1000] [--reps 3]
                                      [--baseline DIR]

1. CPU-bound fan-out: `--n` pure-Python tasks of about `--seconds` each, then a reduce.
   In process (the default), ProcessPoolTaskExecutor and DaskExecutor (a LocalCluster
   of single-threaded worker processes), each with 1 and 2 workers held open (start-up
   is reported apart). The three run in turn within each rep, so that the machine's
   drift lands on all of them alike; speed-up = the median over reps of (that rep's
   in-process time / the executor's time).
   From the 2-worker times: the per-task overhead o = T - ceil(n/W)*w (w = the
   in-process time per task), and what W workers would give: n*w / (ceil(n/W)*(w+o)).
2. Overhead on Dask: `--trivial` trivial tasks through DaskExecutor against the same
   number of bare `client.submit` calls of the same function (then one `gather`), on the
   same cluster, alternating. Ratio = ours / bare. Also against bare calls of a function
   that stores its output as the task does (blob, then record): what is left is our
   bookkeeping (discovery, preflight, submission, outcomes).
3. With `--baseline DIR` (a checkout of stardag before the executors), the in-process
   default building `--trivial` trivial tasks here and there, in fresh processes,
   alternating. Ratio = ours / baseline.

Every build uses fresh task ids (a salt) in a temporary store, without a registry.
Times are medians over --reps; absolute times move with the machine's load, ratios
measured in the same run are what count. Goals (issue 11): fan-out >= 1.7x for the pool
and Dask with 2 workers on 2 cores; Dask overhead <= 1.5x; in process within 1.05x.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("STARDAG_NO_REGISTRY", "1")

import _executor_tasks as tasks  # noqa: E402

import stardag as sd  # noqa: E402
from stardag.build import ProcessPoolTaskExecutor  # noqa: E402


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def fanout_build(n: int, loops: int, **kwargs: object) -> float:
    root = tasks.fanout(n, loops, uuid.uuid4().hex)
    elapsed = timed(lambda: sd.build(root, registry=None, **kwargs))
    assert root.load() == sum(t.load() for t in root.fits)
    return elapsed


def dask_cluster(workers: int) -> object:
    from distributed import LocalCluster

    return LocalCluster(
        processes=True,
        n_workers=workers,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    )


def part_fanout(a: argparse.Namespace) -> None:
    from distributed import Client

    from stardag.dask import DaskExecutor

    loops = tasks.loops_for(a.seconds)
    print(
        f"1. fan-out: {a.n} tasks of ~{a.seconds}s CPU ({loops} rounds), then a reduce "
        f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})"
    )
    print("   each rep runs in process, then the pool, then Dask, back to back; a speed-up")
    print("   is the median over reps of that rep's in-process time / the executor's time")
    speedups: dict[tuple[str, int], float] = {}
    took: dict[tuple[str, int], float] = {}
    base_all: list[float] = []
    for workers in (1, 2):
        start = time.perf_counter()
        with ProcessPoolTaskExecutor(max_workers=workers) as pool:
            fanout_build(2, 1, task_executor=pool)  # start the workers
            pool_startup = time.perf_counter() - start
            start = time.perf_counter()
            with dask_cluster(workers) as cluster, Client(cluster) as client:
                executor = DaskExecutor(client)
                fanout_build(2, 1, task_executor=executor)
                dask_startup = time.perf_counter() - start
                runs: dict[str, list[float]] = {"base": [], "process": [], "dask": []}
                for _ in range(a.reps):
                    runs["base"].append(fanout_build(a.n, loops))
                    runs["process"].append(fanout_build(a.n, loops, task_executor=pool))
                    runs["dask"].append(fanout_build(a.n, loops, task_executor=executor))
        base_all += runs["base"]
        print(f"   {workers} worker(s): in process (default) {median(runs['base']):6.2f} s")
        for kind, startup in (("process", pool_startup), ("dask", dask_startup)):
            ratios = [b / t for b, t in zip(runs["base"], runs[kind], strict=True)]
            speedups[kind, workers] = median(ratios)
            took[kind, workers] = median(runs[kind])
            print(
                f"   {kind:>8}, {workers} worker(s)  {took[kind, workers]:6.2f} s  speed-up "
                f"{speedups[kind, workers]:4.2f}x  (per rep: "
                + ", ".join(f"{r:.2f}" for r in ratios)
                + f"; start-up {startup:.2f} s, not counted)"
            )
    per_task = median(base_all) / a.n
    for kind in ("process", "dask"):
        overhead = max(0.0, took[kind, 2] / math.ceil(a.n / 2) - per_task)
        guesses = ", ".join(
            f"{w} workers ~{a.n * per_task / (math.ceil(a.n / w) * (per_task + overhead)):.1f}x"
            for w in (4, 8, 16)
        )
        print(f"   {kind}: per-task overhead ~{overhead * 1e3:.0f} ms; on more cores: {guesses}")
    print(
        "   goal: >= 1.70x with 2 workers: "
        + ", ".join(f"{k} {speedups[k, 2]:.2f}x" for k in ("process", "dask"))
        + f" (load average at the end {os.getloadavg()[0]:.1f})"
    )


def part_dask_overhead(a: argparse.Namespace) -> None:
    from distributed import Client

    from stardag.dask import DaskExecutor

    n = a.trivial
    print(f"2. overhead on Dask: {n} trivial tasks, 2 single-threaded workers")
    ours: list[float] = []
    bare: list[float] = []
    stored: list[float] = []
    with dask_cluster(2) as cluster, Client(cluster) as client:
        executor = DaskExecutor(client)
        client.submit(tasks.trivial_body, -1).result()  # workers import the module
        sd.build(tasks.trivial(i=-1, salt="warm"), task_executor=executor, registry=None)
        for rep in range(a.reps):
            salt = uuid.uuid4().hex
            futures: list[object] = []

            def submit_all(salt: str = salt, futures: list[object] = futures) -> None:
                futures.extend(
                    client.submit(tasks.trivial_body, i, key=f"bare-{salt}-{i}") for i in range(n)
                )
                client.gather(futures)

            bare.append(timed(submit_all))
            del futures[:]

            def submit_stored(salt: str = salt, futures: list[object] = futures) -> None:
                futures.extend(
                    client.submit(tasks.stored_body, i, f"{salt}-bare", key=f"st-{salt}-{i}")
                    for i in range(n)
                )
                client.gather(futures)

            stored.append(timed(submit_stored))
            del futures[:]
            built = [tasks.trivial(i=i, salt=salt) for i in range(n)]
            ours.append(
                timed(lambda built=built: sd.build(built, task_executor=executor, registry=None))
            )
            print(
                f"   rep {rep + 1}: bare {bare[-1]:.2f} s, bare and stored {stored[-1]:.2f} s, "
                f"ours {ours[-1]:.2f} s",
                flush=True,
            )
    ratio = median(ours) / median(bare)
    print(
        f"   bare client.submit {median(bare):.2f} s, DaskExecutor {median(ours):.2f} s: "
        f"{ratio:.2f}x (goal <= 1.5x); ours per task "
        f"{(median(ours) - median(bare)) / n * 1e3:.2f} ms above bare"
    )
    ratio = median(ours) / median(stored)
    print(
        f"   bare client.submit that also stores the output {median(stored):.2f} s: ours "
        f"{ratio:.2f}x of it; our bookkeeping per task "
        f"{(median(ours) - median(stored)) / n * 1e3:.2f} ms"
    )


IN_PROCESS = """
import os, sys, time, uuid
sys.path.insert(0, {here!r})
import _executor_tasks as tasks
import stardag as sd
print(sd.__file__)
built = [tasks.trivial(i=i, salt=uuid.uuid4().hex) for i in range({n})]
start = time.perf_counter()
sd.build(built, registry=None)
print(time.perf_counter() - start)
"""


def part_in_process(a: argparse.Namespace) -> None:
    n = a.trivial
    print(f"3. in process: {n} trivial tasks, ours against {a.baseline}")
    sides = {"ours": str(HERE.parents[1]), "baseline": str(Path(a.baseline).resolve())}
    took: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(a.reps):
        for side, source in sides.items():
            with tempfile.TemporaryDirectory() as store:
                env = {**os.environ, "PYTHONPATH": source, "STARDAG_HOME": store}
                env.pop("STARDAG_TARGET_ROOTS", None)
                code = IN_PROCESS.format(here=str(HERE), n=n)
                # Run in the store: `-c` puts the working directory first on sys.path, and
                # from a checkout's root that would import its stardag, not `source`'s.
                out = subprocess.run(
                    [sys.executable, "-c", code],
                    env=env,
                    capture_output=True,
                    text=True,
                    cwd=store,
                )
                if out.returncode:
                    sys.exit(f"{side}: {out.stderr}")
                module, took_s = out.stdout.split()[-2:]
                if not module.startswith(source):
                    sys.exit(f"{side}: imported stardag from {module}, not from {source}")
                took[side].append(float(took_s))
    ratio = median(took["ours"]) / median(took["baseline"])
    print(
        f"   baseline {median(took['baseline']):.2f} s, ours {median(took['ours']):.2f} s: "
        f"{ratio:.3f}x (goal <= 1.05x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=0.25)
    parser.add_argument("--trivial", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--baseline", help="a stardag checkout from before the executors")
    parser.add_argument("--only", choices=["fanout", "dask", "inprocess"])
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["STARDAG_HOME"] = home
        os.environ.pop("STARDAG_TARGET_ROOTS", None)
        if a.only in (None, "fanout"):
            part_fanout(a)
        if a.only in (None, "dask"):
            part_dask_overhead(a)
    if a.baseline and a.only in (None, "inprocess"):
        part_in_process(a)


if __name__ == "__main__":
    main()
