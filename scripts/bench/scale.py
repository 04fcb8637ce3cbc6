"""A 100,000-task build and the maintenance of its store: memory, registry size, gc, verify.

    python scripts/bench/scale.py [--n 100000] [--reps 3] [--store-root DIR] [--keep]
                                  [--source DIR]

1. Peak memory: a fresh process imports stardag, constructs the binary reduction tree
   of `--n` trivial tasks (`_overhead_worker.construct`) and builds it cold with the
   default SQLite registry on. Printed per task: the peak RSS of the whole process,
   then its parts: the interpreter after `import stardag`, the DAG the user built
   (RSS after construction, before the build) and the build's own bookkeeping (the
   peak above that). Goal (issue 16): peak <= 1.5 KiB per task.
2. The registry's size per task (the SQLite file with its -wal, after the build).
3. On that store, each command in a fresh process, median of `--reps` (goals: gc dry
   run under 2 s, verify under 4 s):
   - `stardag gc --keep-last 1`: a dry run, every task live (the closure walk);
   - `stardag gc --keep-last 0 --grace 0s`: a dry run with every record a candidate;
   - `stardag verify`: every record, blob and registry output row.
   The first gc and the first verify on the store fill its record index (`records.idx`:
   gc reads records the index has no entry for as the files are now; verify parses
   those whose bytes it has not checked whole), so each run's time is printed too.

The store lives on a tmpfs (`--store-root`, default /dev/shm), where deleting files
does not slow later file creation; it is removed at the end (kept with `--keep`).
Absolute times move with the machine's load, printed at the start and the end.
`--source DIR` measures the stardag package in DIR (a checkout, such as the main
branch before a change) instead of the interpreter's own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

WORKER = """
import json, resource, sys, time
sys.path.insert(0, {here!r})

def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

import stardag as sd
out = {{"import_rss": rss_mib()}}
import _overhead_worker as w
root, tasks, expected = w.construct("tree", {n})
out["dag_rss"] = rss_mib()
start = time.perf_counter()
summary = sd.build(root)
out["build_s"] = time.perf_counter() - start
out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["tasks"] = tasks
out["ran"] = summary.ran
out["ok"] = root.load() == expected
print("RESULT " + json.dumps(out))
"""


SOURCE: str | None = None  # --source


def environment(store: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STARDAG_", "PYTHONPATH"))}
    env.update(STARDAG_TARGET_ROOTS__DEFAULT=store, STARDAG_HOME=store)
    if SOURCE:
        env["PYTHONPATH"] = SOURCE
    return env


def build(python: str, store: str, n: int) -> dict:
    code = WORKER.format(here=str(HERE), n=n)
    done = subprocess.run(
        [python, "-c", code], cwd=store, env=environment(store), capture_output=True, text=True
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.exit(f"the build failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def timed_command(python: str, store: str, args: list[str], reps: int) -> tuple[list[float], str]:
    """Wall times of `stardag ARGS` in fresh processes, and the last one's output."""
    times, output = [], ""
    for _ in range(reps):
        start = time.perf_counter()
        done = subprocess.run(
            [python, "-m", "stardag", *args],
            cwd=store,
            env=environment(store),
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - start)
        output = done.stdout + done.stderr
        if done.returncode not in (0, 1):
            sys.exit(f"stardag {' '.join(args)} failed (exit {done.returncode}):\n{output}")
    return times, output


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=100_000, help="tasks in the tree")
    ap.add_argument("--reps", type=int, default=3, help="runs of each command (median)")
    ap.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--store-root", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    ap.add_argument("--keep", action="store_true", help="keep the store (its path is printed)")
    ap.add_argument("--source", help="measure the stardag package in this checkout")
    a = ap.parse_args()
    global SOURCE
    SOURCE = a.source and str(Path(a.source).resolve())
    store = tempfile.mkdtemp(prefix="sd-scale-", dir=a.store_root)
    print(f"store {store}; load average {os.getloadavg()[0]:.2f}", flush=True)
    if SOURCE:
        print(f"stardag from {SOURCE}")
    try:
        r = build(a.python, store, a.n)
        tasks = r["tasks"]

        def per_task(mib: float) -> str:
            return f"{mib * 1024 / tasks:.2f} KiB"

        print(
            f"1. cold build of {tasks} tasks, registry on: {r['build_s']:.1f} s, "
            f"ran {r['ran']}, value {'right' if r['ok'] else 'WRONG'}"
        )
        peak = r["peak_rss"]
        print(f"   peak RSS {peak:.0f} MiB: {per_task(peak)} per task (goal <= 1.5 KiB)")
        print(f"   - interpreter and import stardag: {r['import_rss']:.0f} MiB, ", end="")
        print(per_task(r["import_rss"]))
        dag = r["dag_rss"] - r["import_rss"]
        print(f"   - the DAG the user built: {dag:.0f} MiB, {per_task(dag)}")
        ours = peak - r["dag_rss"]
        print(f"   - the build's bookkeeping (peak above that): {ours:.0f} MiB, {per_task(ours)}")
        size = sum(
            os.path.getsize(os.path.join(store, f"registry.db{suffix}"))
            for suffix in ("", "-wal")
            if os.path.exists(os.path.join(store, f"registry.db{suffix}"))
        )
        print(f"2. registry: {size / 2**20:.1f} MiB, {size / tasks:.0f} bytes per task")
        cases = {
            "gc --keep-last 1 (dry run, all live)": (["gc", "--keep-last", "1"], 2.0),
            "gc --keep-last 0 --grace 0s (dry run, all candidates)": (
                ["gc", "--keep-last", "0", "--grace", "0s"],
                2.0,
            ),
            "verify": (["verify"], 4.0),
        }
        print(f"3. on that store, fresh processes, median of {a.reps}:")
        for label, (args, goal) in cases.items():
            times, output = timed_command(a.python, store, args, a.reps)
            took = statistics.median(times)
            verdict = "PASS" if took < goal else "FAIL"
            last = (output.strip().splitlines() or [""])[-1][:100]
            each = ", ".join(f"{t:.2f}" for t in times)
            print(f"   {label}: {took:.2f} s (goal < {goal:g} s) {verdict}   [{last}]")
            print(f"      each run: {each} s (the first fills the record index)")
    finally:
        if not a.keep:
            shutil.rmtree(store, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
