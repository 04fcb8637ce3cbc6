"""What the registry costs a build, and how fast it answers, in one run.

    python3 scripts/bench/registry.py [--n 10000] [--reps 3] [--json out.json]

Cold builds of a binary reduction tree of about N tasks, each in a fresh process
and a fresh store (`_registry_worker.py`), three ways: ours recording into the
registry, ours with STARDAG_NO_REGISTRY=1, and the released stardag 0.28.0 (which
records nothing locally; installed on first use into
~/.cache/stardag-bench/stardag-0.28.0). Then, on the DAG the recording build left,
lineage (up and down), rendering, history, explain (a complete task, and a new
variant that would run) and a batched `sd.registry.outputs` of every task id,
against the per-task store check a build does.

Ratios within one run are what count; absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _venvs import CACHE, venv_python

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_registry_worker.py")

RELEASED = "stardag==0.28.0"


def ours_python() -> str:
    """The repo's venv if there is one, else a cached editable install."""
    local = REPO / ".venv" / "bin" / "python"
    return str(local) if local.exists() else venv_python(CACHE / "ours", "-e", str(REPO))


def run(python: str, phase: str, n: int, registry: bool, timeout: float) -> dict:
    """One worker process in a fresh store: its RESULT line."""
    with tempfile.TemporaryDirectory(prefix="stardag-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STARDAG_", "PYTHON"))}
        env.update(STARDAG_HOME=home, STARDAG_TARGET_ROOTS__DEFAULT=f"{home}/store")
        if not registry:
            env["STARDAG_NO_REGISTRY"] = "1"
        cmd = [python, str(WORKER), phase, str(n)]
        done = subprocess.run(
            cmd, cwd=home, env=env, capture_output=True, text=True, timeout=timeout
        )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict = json.loads(line[7:])
            if "error" in result:
                sys.exit(f"{phase} ({python}) failed: {result['error']}")
            return result
    sys.exit(f"{phase} ({python}) exited {done.returncode}: {done.stderr[-2000:]}")


def median(results: list[dict], key: str) -> float:
    """The median of one number over repeated results."""
    return statistics.median(r[key] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="about this many tasks")
    parser.add_argument("--reps", type=int, default=3, help="cold builds per variant")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", type=Path, help="also write every result here")
    a = parser.parse_args()
    ours, released = ours_python(), venv_python(CACHE / "stardag-0.28.0", RELEASED)
    variants = {
        "ours, registry on": (ours, True),
        "ours, no registry": (ours, False),
        "stardag 0.28.0": (released, False),
    }
    cold: dict[str, list[dict]] = {name: [] for name in variants}
    for rep in range(a.reps):  # interleaved, so load drifts hit every variant alike
        for name, (python, registry) in variants.items():
            phase = "queries" if registry and rep == 0 else "cold"
            cold[name].append(run(python, phase, a.n, registry, a.timeout))
            print(f"  rep {rep + 1} {name}: {cold[name][-1]['cold_s']:.2f} s", file=sys.stderr)
    imports = [run(ours, "import", a.n, True, a.timeout) for _ in range(a.reps)]
    report(cold, imports)
    if a.json:
        a.json.write_text(json.dumps({"cold": cold, "imports": imports}, indent=2))


def report(cold: dict[str, list[dict]], imports: list[dict]) -> None:
    """Print the cold builds, their ratios, and the query timings."""
    tasks = cold["ours, registry on"][0]["tasks"]
    on, off, old = (median(cold[k], "cold_s") for k in cold)
    cpu_on, cpu_off, cpu_old = (median(cold[k], "cold_cpu_s") for k in cold)
    import_registry = median(imports, "import_registry_s")
    reps = len(cold[next(iter(cold))])
    print(f"\ncold build of a {tasks}-task tree (median of {reps}; wall, and CPU of all threads)")
    for name, seconds, cpu in zip(cold, (on, off, old), (cpu_on, cpu_off, cpu_old), strict=True):
        print(f"  {name:<34} {seconds:8.2f} s  {cpu:8.2f} s CPU")
    print(f"  registry on / no registry          {on / off:8.2f}x  {cpu_on / cpu_off:8.2f}x CPU")
    print(f"  registry on / stardag 0.28.0       {on / old:8.2f}x  {cpu_on / cpu_old:8.2f}x CPU")
    print(f"  no registry / stardag 0.28.0       {off / old:8.2f}x  {cpu_off / cpu_old:8.2f}x CPU")
    print(f"  import stardag.registry (once)     {import_registry * 1e3:8.0f} ms")
    per_task, per_task_cpu = (
        (x - y - import_registry) / tasks for x, y in ((on, off), (cpu_on, cpu_off))
    )
    print(
        f"  recording per task, beyond import  {per_task * 1e6:8.1f} us"
        f"  {per_task_cpu * 1e6:8.1f} us CPU"
    )
    q = cold["ours, registry on"][0]
    print(f"\nqueries on that DAG (median of 3 calls), registry of {q['lineage_nodes']} tasks")
    rows = [
        (f"lineage up ({q['lineage_nodes']} nodes)", q["lineage_up_s"]),
        (f"lineage down ({q['lineage_down_nodes']} nodes)", q["lineage_down_s"]),
        ("render text + Mermaid + DOT", q["render_s"]),
        ("history of the root", q["history_s"]),
        ("explain the root (complete)", q["explain_s"]),
        (f"explain a variant ({q['explain_variant_differences']} diffs)", q["explain_variant_s"]),
        (f"outputs of {q['outputs_found']} ids, batched", q["outputs_s"]),
        (f"store check of {q['store_complete']} ids, per task", q["store_check_s"]),
    ]
    for label, seconds in rows:
        print(f"  {label:<40} {seconds * 1e3:8.1f} ms")
    print(f"  batched registry / per-task store      {q['outputs_s'] / q['store_check_s']:8.2f}x")


if __name__ == "__main__":
    main()
