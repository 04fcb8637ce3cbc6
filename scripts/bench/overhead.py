"""Per-task overhead of our stardag against the floor, the released stardag 0.28.0,
joblib.Memory and Dask's threaded scheduler, in one run.

    python3 scripts/bench/overhead.py [--sizes 1000,10000] [--shapes tree,chain] [--reps N]
                                      [--per-task-n 10000] [--registry] [--only-per-task]
                                      [--store-root DIR] [--json out.json]

First, against the floor (`--per-task-n`, a binary reduction tree of trivial int tasks):
the floor itself (plain Python doing only the unavoidable work per task: blake3 of the
task's canonical JSON, read its two inputs' files, write its value to a temp file, rename,
stat), ours with the registry off and on (SQLite), stardag 0.28.0, joblib.Memory and
Dask's threaded scheduler (in memory, nothing stored) on the same tree, each a cold
build in a fresh process, interleaved over --reps; every per-task cost is printed as a
multiple of the floor, with peak RSS per task. Then the small pipeline (10 tasks) in a
fresh process, whole-process wall time, ours (registry on) against stardag 0.28.0; and
our worker pool (default, max_workers=1, max_workers=2) on the trivial tree and on 50
tasks that each sleep 0.1 s.

Then the ours/theirs table (skipped with --only-per-task): the same DAGs
(`_overhead_worker.py`: the tree and a chain) with both packages, each in a fresh
process of that package's interpreter and a fresh store (STARDAG_NO_REGISTRY=1 unless
`--registry`). Interpreters: ours is the repo's `.venv` if present, else
`~/.cache/stardag-bench/ours`; theirs `~/.cache/stardag-bench/stardag-0.28.0`; the
anchors' `~/.cache/stardag-bench/anchors` (stardag 0.28.0, joblib, dask); made on first use.
Per (shape, n): construct, cold build, in-process no-op, fresh no-op (a new process
constructs the DAG and builds it against the filled store), and peak RSS. Plus `import
stardag` (fresh processes, median).

Bytecode: ours is compiled before the first measurement, as `pip install` compiles
the released stardag's (an editable checkout run under PYTHONDONTWRITEBYTECODE=1 would
otherwise recompile its changed modules in every fresh process).

Stores: every store lives under one directory on `--store-root` (default the tmpfs
/dev/shm, where deleting files does not slow the next case's file creation, as it does
on this machine's journal-less ext4) and is kept until the end of the run.

Ratios in the same run are what count; absolute times move with the machine's load
(printed at the start and the end).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _venvs import CACHE, compile_bytecode, venv_python

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_overhead_worker.py")

THEIRS = "stardag==0.28.0"
SIDES = ("ours", "theirs")  # also the attributes of the parsed args naming their interpreters
METRICS = {  # key in the worker's result: label
    "construct_s": "construct",
    "cold_s": "cold build",
    "noop_s": "no-op, same process",
    "fresh_s": "no-op, fresh process",
    "cold_rss": "peak RSS cold (MiB)",
    "fresh_rss": "peak RSS fresh (MiB)",
}


def run_worker(
    side: str,
    phase: str,
    shape: str,
    n: int,
    store: str,
    a,
    registry: bool | None = None,
    extra: dict | None = None,
) -> dict:
    """One worker process of `side` ("ours", "theirs", "anchor") in `store`: its RESULT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STARDAG_", "PYTHONPATH"))}
    env.update(STARDAG_TARGET_ROOTS__DEFAULT=store, STARDAG_HOME=store, STARDAG_NO_REGISTRY="1")
    if side == "ours" and (a.registry if registry is None else registry):
        del env["STARDAG_NO_REGISTRY"]
    env.update(extra or {})
    cmd = [getattr(a, side), str(WORKER), phase, shape, str(n)]
    try:
        p = subprocess.run(
            cmd, cwd=store, env=env, capture_output=True, text=True, timeout=a.timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {a.timeout:.0f}s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": f"exit {p.returncode}: {(p.stderr.strip().splitlines() or [''])[-1]}"}


def run_case(side: str, shape: str, n: int, a) -> dict:
    """A cold process, then a fresh no-op process, in a fresh store (kept until the end)."""
    store = tempfile.mkdtemp(prefix=f"sd-overhead-{shape}-{n}-", dir=a.store_root)
    cold = run_worker(side, "cold", shape, n, store, a)
    cold["cold_rss"] = cold.get("peak_rss_mib")
    if "error" in cold:
        return cold
    fresh = run_worker(side, "noop", shape, n, store, a)
    return {
        **cold,
        "fresh_s": fresh.get("fresh_s"),
        "fresh_rss": fresh.get("peak_rss_mib"),
        **({"error": "fresh: " + fresh["error"]} if "error" in fresh else {}),
    }


def median_of(runs: list[dict]) -> dict:
    """The first successful run, each number the median over the successful runs."""
    ok = [r for r in runs if "error" not in r] or runs[:1]
    out = dict(ok[0])
    for k, v in out.items():
        if isinstance(v, float):
            out[k] = statistics.median(r[k] for r in ok if isinstance(r.get(k), float))
    return out


def ratio(ours, theirs) -> float | None:
    return ours / theirs if isinstance(ours, float) and isinstance(theirs, float) else None


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def fmt(v, key: str = "") -> str:
    if v is None:
        return "error"
    if key.endswith("rss"):
        return f"{v:.0f}"
    return f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s"


def measure_imports(a) -> dict:
    """Median `import stardag` per side; the sides alternate so load drifts hit both."""
    runs: dict = {side: [] for side in SIDES}
    for _ in range(a.import_reps):
        for side in SIDES:
            runs[side].append(run_worker(side, "import", "-", 0, tempfile.gettempdir(), a))
    for side, r in runs.items():
        print(f"{side}: stardag {r[0].get('version')} from {r[0].get('module')}", flush=True)
    return {side: median_of(r) for side, r in runs.items()}


def measure_dags(a) -> dict:
    """Results per (side, shape, n); the sides alternate per case."""
    results: dict = {}
    for shape in a.shapes:
        for n in sorted(a.sizes):
            for side in SIDES:
                results[side, shape, n] = r = measure_case(side, shape, n, results, a)
                print(f"  {side} {shape} {n}: cold build {fmt(r.get('cold_s'))}", flush=True)
    return results


def measure_case(side: str, shape: str, n: int, done: dict, a) -> dict:
    """Median of --reps runs; skipped where a smaller n of this side and shape failed."""
    if any("error" in r for (s, sh, _), r in done.items() if (s, sh) == (side, shape)):
        return {"error": "not run: failed at a smaller size"}
    runs = [run_case(side, shape, n, a) for _ in range(a.reps)]
    failed = [r for r in runs if "error" in r]
    return failed[0] if failed else median_of(runs)


def valid(r: dict) -> dict:
    """A result's numbers, or none if the run failed (its numbers are not comparable)."""
    return {} if "error" in r else r


def goals(imports: dict, res: dict, a) -> list[tuple[str, float | None, float]]:
    """(what, measured, goal): the core issue's targets, each met when measured <= goal."""
    big, small = max(a.sizes), min(a.sizes)
    ours = {(shape, n): valid(res["ours", shape, n]) for shape in a.shapes for n in a.sizes}

    def per_task(shape: str, n: int) -> float | None:
        r = ours.get((shape, n), {})
        return r["cold_s"] / r["tasks"] if "cold_s" in r else None

    def vs_theirs(key: str, shape: str = "tree") -> float | None:
        return ratio(ours[shape, big].get(key), valid(res["theirs", shape, big]).get(key))

    out = [("import stardag (x theirs)", ratio(*(imports[s].get("import_s") for s in SIDES)), 1.5)]
    if "tree" in a.shapes:
        out.append((f"cold build, tree {big} (x theirs)", vs_theirs("cold_s"), 0.5))
        out.append((f"fresh-process no-op, tree {big} (x theirs)", vs_theirs("fresh_s"), 1.0))
    if "tree" in a.shapes and "chain" in a.shapes:
        chain_vs_tree = ratio(per_task("chain", big), per_task("tree", big))
        out.append((f"chain {big} builds, per-task cost (x our tree's)", chain_vs_tree, 1.5))
    for shape in a.shapes:
        if big > small:
            growth = ratio(per_task(shape, big), per_task(shape, small))
            out.append((f"linear: {shape} per-task cost {big} (x {small})", growth, 1.5))
        noop = ours[shape, big].get("noop_s")
        out.append((f"same-process no-op, {shape} {big} (ms)", noop and noop * 1e3, 10.0))
    return out


def report(imports: dict, res: dict, a) -> None:
    print("\n| case | metric | ours | theirs | ours/theirs |\n|---|---|---|---|---|")
    i = [imports[s].get("import_s") for s in SIDES]
    print(f"| - | import stardag | {fmt(i[0])} | {fmt(i[1])} | {fmt_ratio(ratio(*i))} |")
    for shape in a.shapes:
        for n in a.sizes:
            o, t = valid(res["ours", shape, n]), valid(res["theirs", shape, n])
            for key, label in METRICS.items():
                cells = (
                    fmt(o.get(key), key),
                    fmt(t.get(key), key),
                    fmt_ratio(ratio(o.get(key), t.get(key))),
                )
                print(f"| {shape} {n} | {label} | " + " | ".join(cells) + " |")
    failed = {**{(s, "import stardag"): r for s, r in imports.items()}, **res}
    errors = [f"- {' '.join(map(str, k))}: {r['error']}" for k, r in failed.items() if "error" in r]
    print("\nErrors:\n" + "\n".join(errors) if errors else "\nNo errors.")
    print("\nGoals:")
    for what, got, goal in goals(imports, res, a):
        verdict = "PASS" if got is not None and got <= goal else "FAIL"
        print(f"- {what}: {'-' if got is None else f'{got:.2f}'} (goal <= {goal:g}) {verdict}")


# -- per task, against the floor and the anchors ------------------------------------------
PER_TASK = {  # label: (interpreter attribute, worker phase, our registry on)
    "floor (plain Python, the unavoidable work)": ("ours", "floor", False),
    "ours, registry off": ("ours", "cold", False),
    "ours, registry on (SQLite)": ("ours", "cold", True),
    "ours, registry on, claims off": ("ours", "cold", True),
    "stardag 0.28.0": ("theirs", "cold", False),
    "joblib.Memory": ("anchor", "joblib", False),
    "Dask threaded scheduler (in memory)": ("anchor", "dask", False),
}
FLOOR, OFF, ON, ON_NO_CLAIMS = list(PER_TASK)[:4]
EXTRA_ENV = {ON_NO_CLAIMS: {"STARDAG_CLAIMS": "0"}}  # the default claims each task first


def measure_per_task(a) -> dict:
    """A cold build of the tree of --per-task-n tasks per case, interleaved over --reps."""
    runs: dict = {label: [] for label in PER_TASK}
    for _ in range(a.reps):
        for label, (side, phase, registry) in PER_TASK.items():
            store = tempfile.mkdtemp(prefix="sd-per-task-", dir=a.store_root)
            result = run_worker(
                side, phase, "tree", a.per_task_n, store, a, registry, EXTRA_ENV.get(label)
            )
            runs[label].append(result)
            print(f"  {label}: {fmt(result.get('cold_s'))}", flush=True)
    return {label: median_of(r) for label, r in runs.items()}


THREADS = {  # label: (worker phase, BENCH_MAX_WORKERS)
    "trivial tree, default (elastic) pool": ("cold", ""),
    "trivial tree, max_workers=1": ("cold", "1"),
    "trivial tree, max_workers=2 (fixed)": ("cold", "2"),
    "50 x sleep 0.1 s, default (elastic) pool": ("naps", ""),
    "50 x sleep 0.1 s, max_workers=1": ("naps", "1"),
    "50 x sleep 0.1 s, max_workers=2 (fixed)": ("naps", "2"),
}


def measure_threads(a) -> dict:
    """Our worker pool on trivial tasks (the tree) and on 50 sleeping tasks, registry off."""
    runs: dict = {label: [] for label in THREADS}
    for _ in range(a.reps):
        for label, (phase, workers) in THREADS.items():
            store = tempfile.mkdtemp(prefix="sd-threads-", dir=a.store_root)
            extra = {"BENCH_MAX_WORKERS": workers} if workers else {}
            result = run_worker(
                "ours", phase, "tree", a.per_task_n, store, a, registry=False, extra=extra
            )
            runs[label].append(result)
    return {label: median_of(r) for label, r in runs.items()}


def report_threads(threads: dict) -> None:
    print("\nWorker threads (ours, registry off):")
    for label, r in threads.items():
        print(f"  {label:<44} {fmt(r.get('cold_s'))}" + (f"  {r['error']}" if "error" in r else ""))


def measure_small(a) -> dict:
    """The small pipeline (10 tasks) in a fresh process, whole-process wall time."""
    sides = {"ours, registry on": ("ours", True), "stardag 0.28.0": ("theirs", False)}
    times: dict = {label: [] for label in sides}
    for _ in range(a.small_reps):
        for label, (side, registry) in sides.items():
            store = tempfile.mkdtemp(prefix="sd-small-", dir=a.store_root)
            t = time.perf_counter()
            result = run_worker(side, "small", "tree", 10, store, a, registry=registry)
            times[label].append(time.perf_counter() - t)
            if "error" in result:
                times[label][-1] = float("nan")
    return {label: statistics.median(t) for label, t in times.items()}


def report_per_task(per: dict, small: dict, a) -> None:
    floor = per[FLOOR].get("cold_s")
    tasks = per[FLOOR].get("tasks") or 1
    print(f"\nCold build of the tree of {tasks} tasks, per task (median of {a.reps}):")
    print("| case | per task | x floor | peak RSS MiB | KiB per task |\n|---|---|---|---|---|")
    for label, r in per.items():
        if "error" in r:
            print(f"| {label} | error: {r['error']} | | | |")
            continue
        rss = r.get("peak_rss_mib") or 0.0
        cells = (
            f"{r['cold_s'] / r['tasks'] * 1e6:.1f} us",
            fmt_ratio(ratio(r["cold_s"], floor)),
            f"{rss:.0f}",
            f"{rss * 1024 / r['tasks']:.2f}",
        )
        print(f"| {label} | " + " | ".join(cells) + " |")
    on_off = ratio(per[ON].get("cold_s"), per[OFF].get("cold_s"))
    no_claims = ratio(per[ON_NO_CLAIMS].get("cold_s"), per[OFF].get("cold_s"))
    print(
        f"registry on / off: {fmt_ratio(on_off)} (goal <= 1.15x; "
        f"{fmt_ratio(no_claims)} with claims off); "
        f"registry off / floor: {fmt_ratio(ratio(per[OFF].get('cold_s'), floor))} (goal <= 2.0x)"
    )
    ours, theirs = small["ours, registry on"], small["stardag 0.28.0"]
    print(
        f"\nSmall pipeline (10 tasks), fresh process, cold, median of {a.small_reps}: ours with "
        f"the registry {ours * 1e3:.0f} ms, stardag 0.28.0 {theirs * 1e3:.0f} ms: "
        f"{ours / theirs:.2f}x (goal <= 1.0x)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="1000,10000", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--shapes", default="tree,chain", type=lambda s: s.split(","))
    ap.add_argument("--reps", type=int, default=1, help="runs per case (median)")
    ap.add_argument("--import-reps", type=int, default=7)
    ap.add_argument("--timeout", type=float, default=300, help="seconds per worker process")
    ap.add_argument("--registry", action="store_true", help="leave our registry on")
    ap.add_argument(
        "--ours", help="our interpreter (default: the repo's .venv, else a cached venv)"
    )
    ap.add_argument("--theirs", help="an interpreter with stardag==0.28.0 (default: a cached venv)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--per-task-n", type=int, default=10_000, help="tree size against the floor")
    ap.add_argument("--small-reps", type=int, default=7)
    ap.add_argument("--only-per-task", action="store_true", help="skip the ours/theirs table")
    ap.add_argument(
        "--store-root",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="where stores go (default: the tmpfs /dev/shm; every store is kept to the end)",
    )
    ap.add_argument("--anchor", help="an interpreter with joblib and dask (default: a cached venv)")
    a = ap.parse_args()
    local = REPO / ".venv" / "bin" / "python"
    a.ours = a.ours or (
        str(local) if local.exists() else venv_python(CACHE / "ours", "-e", str(REPO))
    )
    a.theirs = a.theirs or venv_python(CACHE / "stardag-0.28.0", THEIRS)
    a.anchor = a.anchor or venv_python(CACHE / "anchors", THEIRS, "joblib", "dask")
    compile_bytecode(a.ours)
    a.store_root = tempfile.mkdtemp(prefix="sd-overhead-", dir=a.store_root)
    print(f"stores under {a.store_root}, kept until the end; load {os.getloadavg()[0]:.2f}")
    try:
        per, small, threads = measure_per_task(a), measure_small(a), measure_threads(a)
        imports, res = ({}, {}) if a.only_per_task else (measure_imports(a), measure_dags(a))
    finally:
        shutil.rmtree(a.store_root, ignore_errors=True)
    if not a.only_per_task:
        report(imports, res, a)
    report_per_task(per, small, a)
    report_threads(threads)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if a.json:
        rows = [{"side": s, "shape": sh, "n": n, **r} for (s, sh, n), r in res.items()]
        Path(a.json).write_text(
            json.dumps({"args": vars(a), "imports": imports, "results": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
