"""What the registry costs a build, and how fast it answers, in one run.

    python3 scripts/bench/registry.py [--n 10000] [--reps 3] [--json out.json]
                                      [--store-root DIR]

Cold builds of a binary reduction tree of about N tasks, each in a fresh process
and a fresh store (`_registry_worker.py`): ours recording into a SQLite registry and
into a PostgreSQL one (a throwaway server on 127.0.0.1, as the tests start it;
`--no-postgres` skips it), each with claims on (the default) and off
(STARDAG_CLAIMS=0); ours with STARDAG_NO_REGISTRY=1; and the released stardag
0.28.0 (which records nothing locally; installed on first use into
~/.cache/stardag-bench/stardag-0.28.0). Then, on the DAG each recording build left
(SQLite and PostgreSQL), lineage (up and down), rendering, history, explain (a
complete task, and a new variant that would run) and a batched
`sd.registry.outputs` of every task id, against the per-task store check a build does.

Stores (and the SQLite registries beside them) live under one directory on
`--store-root` (default the system's temp folder: on disk, where a user's SQLite
registry lives) and are kept until the end: on this machine's journal-less ext4,
deleting a store slowed the next case's file creation. PostgreSQL keeps its data
where the tests' server does (fsync off). On a tmpfs SQLite's own writes cost
almost nothing, so PostgreSQL / SQLite comes out higher there.

Ratios within one run are what count; absolute times move with the machine's load.
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
from pathlib import Path

from _venvs import CACHE, venv_python

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_registry_worker.py")

RELEASED = "stardag==0.28.0"


def ours_python() -> str:
    """The repo's venv if there is one, else a cached editable install."""
    local = REPO / ".venv" / "bin" / "python"
    return str(local) if local.exists() else venv_python(CACHE / "ours", "-e", str(REPO))


def run(
    python: str, phase: str, n: int, registry: bool, timeout: float, extra: dict[str, str]
) -> dict:
    """One worker process in a fresh store (kept until the end of the run): its RESULT line."""
    home = tempfile.mkdtemp(prefix="stardag-bench-", dir=STORES[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STARDAG_", "PYTHON"))}
    env.update(STARDAG_HOME=home, STARDAG_TARGET_ROOTS__DEFAULT=f"{home}/store")
    if not registry:
        env["STARDAG_NO_REGISTRY"] = "1"
    env.update({k: v() if callable(v) else v for k, v in extra.items()})
    cmd = [python, str(WORKER), phase, str(n)]
    done = subprocess.run(cmd, cwd=home, env=env, capture_output=True, text=True, timeout=timeout)
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
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL runs")
    parser.add_argument(
        "--store-root",
        help="where the stores live, each kept until the end (default: the system's temp "
        "folder, on disk like a user's ~/.stardag)",
    )
    a = parser.parse_args()
    ours, released = ours_python(), venv_python(CACHE / "stardag-0.28.0", RELEASED)
    server = None if a.no_postgres else postgres_server()
    off = {"STARDAG_CLAIMS": "0"}
    variants: dict[str, tuple[str, bool, dict]] = {
        SQLITE: (ours, True, {}),
        SQLITE_OFF: (ours, True, off),
        "ours, no registry": (ours, False, {}),
        "stardag 0.28.0": (released, False, {}),
    }
    if server is not None:
        pg = {"STARDAG_REGISTRY_URL": server.fresh_url}
        variants[POSTGRES] = (ours, True, pg)
        variants[POSTGRES_OFF] = (ours, True, {**pg, **off})
    cold: dict[str, list[dict]] = {name: [] for name in variants}
    STORES[0] = tempfile.mkdtemp(prefix="sd-registry-bench-", dir=a.store_root)
    try:
        for rep in range(a.reps):  # interleaved, so load drifts hit every variant alike
            for name, (python, registry, extra) in variants.items():
                phase = "queries" if name in (SQLITE, POSTGRES) and rep == 0 else "cold"
                cold[name].append(run(python, phase, a.n, registry, a.timeout, extra))
                print(f"  rep {rep + 1} {name}: {cold[name][-1]['cold_s']:.2f} s", file=sys.stderr)
        imports = [run(ours, "import", a.n, True, a.timeout, {}) for _ in range(a.reps)]
    finally:
        if server is not None:
            server.destroy()
        shutil.rmtree(STORES[0], ignore_errors=True)
    report(cold, imports)
    if a.json:
        a.json.write_text(json.dumps({"cold": cold, "imports": imports}, indent=2))


SQLITE, SQLITE_OFF = "ours, SQLite registry", "ours, SQLite, claims off"
# Every store of a run lives under one directory, removed at the end: deleting a store
# right before the next case slows that case's file creation on this machine's ext4.
STORES: list[str | None] = [None]
POSTGRES, POSTGRES_OFF = "ours, PostgreSQL registry", "ours, PostgreSQL, claims off"


def postgres_server():  # -> tests/support/postgres.py PostgresServer
    """A throwaway PostgreSQL server, started the way the tests start theirs."""
    sys.path.insert(0, str(REPO / "tests" / "support"))
    from postgres import PostgresServer

    return PostgresServer()


def report(cold: dict[str, list[dict]], imports: list[dict]) -> None:
    """Print the cold builds, their ratios, and the query timings."""
    tasks = cold[SQLITE][0]["tasks"]
    wall = {name: median(results, "cold_s") for name, results in cold.items()}
    cpu = {name: median(results, "cold_cpu_s") for name, results in cold.items()}
    import_registry = median(imports, "import_registry_s")
    reps = len(cold[SQLITE])
    print(f"\ncold build of a {tasks}-task tree (median of {reps}; wall, and CPU of all threads)")
    for name in cold:
        print(f"  {name:<40} {wall[name]:8.2f} s  {cpu[name]:8.2f} s CPU")
    ratios = [
        ("SQLite registry / no registry", SQLITE, "ours, no registry"),
        ("SQLite registry / stardag 0.28.0", SQLITE, "stardag 0.28.0"),
        ("no registry / stardag 0.28.0", "ours, no registry", "stardag 0.28.0"),
        ("claims on / off, SQLite (goal <= 1.2)", SQLITE, SQLITE_OFF),
        ("PostgreSQL / SQLite, claims off (goal <= 2)", POSTGRES_OFF, SQLITE_OFF),
        ("PostgreSQL / SQLite, claims on", POSTGRES, SQLITE),
        ("claims on / off, PostgreSQL (goal <= 1.2)", POSTGRES, POSTGRES_OFF),
    ]
    for label, a, b in ratios:
        if a in wall and b in wall:
            print(f"  {label:<44} {wall[a] / wall[b]:6.2f}x  {cpu[a] / cpu[b]:6.2f}x CPU")
    print(f"  import stardag.registry (once)               {import_registry * 1e3:8.0f} ms")
    per_task, per_task_cpu = (
        (x[SQLITE_OFF] - x["ours, no registry"] - import_registry) / tasks for x in (wall, cpu)
    )
    print(
        f"  recording per task in SQLite, beyond import  {per_task * 1e6:8.1f} us"
        f"  {per_task_cpu * 1e6:8.1f} us CPU"
    )
    for name in (SQLITE, POSTGRES):
        if name in cold:
            queries(name, cold[name][0])


def queries(name: str, q: dict) -> None:
    """Print the query timings measured on one registry."""
    print(f"\nqueries on that DAG (median of 3 calls), {name}, {q['lineage_nodes']} tasks")
    rows = [
        (f"lineage up ({q['lineage_nodes']} nodes)", q["lineage_up_s"]),
        ("  the same, every node read", q["lineage_up_nodes_s"]),
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
    goal = 0.1 if name == POSTGRES else 0.05  # issues 13 and 16, for 10,000 nodes
    if q["lineage_nodes"] >= 10_000:
        verdict = "met" if q["lineage_up_s"] < goal else "NOT met"
        print(f"  goal: lineage up < {goal * 1e3:.0f} ms at 10,000 nodes, {verdict}")
    print(f"  batched registry / per-task store      {q['outputs_s'] / q['store_check_s']:8.2f}x")


if __name__ == "__main__":
    main()
