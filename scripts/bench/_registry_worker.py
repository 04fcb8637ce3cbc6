"""One measurement for registry.py, in this process; prints one `RESULT {json}` line.

Usage: python _registry_worker.py PHASE N   (run in a fresh store dir, env set by the driver)

  import   time `import stardag` and then `import stardag.registry` (ours only)
  cold     construct a binary reduction tree of about N tasks and build it cold
  queries  `cold`, then time registry queries on that DAG (ours, registry on)

Uses only the API that stardag 0.28.0 and ours share for the build. No
`from __future__ import annotations`: stardag 0.28.0 reads evaluated annotations.
"""

import json
import statistics
import sys
import time

_t0 = time.perf_counter()
import stardag as sd  # noqa: E402

IMPORT_S = time.perf_counter() - _t0
_RAN = [0]


@sd.task
def leaf(i: int) -> int:
    _RAN[0] += 1
    return i


@sd.task
def add(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    _RAN[0] += 1
    return a + b


def tree(n: int, first: int = 0):
    """The root of a binary reduction tree over (n+1)//2 leaves, and every task in it."""
    level = [leaf(i=k) for k in range(first, first + (n + 1) // 2)]
    every = list(level)
    while len(level) > 1:
        pairs = [add(a=level[j], b=level[j + 1]) for j in range(0, len(level) - 1, 2)]
        every += pairs
        level = pairs + level[len(level) - len(level) % 2 :]
    return level[0], every


def timed(fn, reps: int = 3):
    """Median seconds of `reps` calls of `fn`, and its last result."""
    times, result = [], None
    for _ in range(reps):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def cold(n: int) -> dict:
    root, every = tree(n)
    t, cpu = time.perf_counter(), time.process_time()
    sd.build(root)
    out = {
        "tasks": len(every),
        "cold_s": time.perf_counter() - t,
        "cold_cpu_s": time.process_time() - cpu,  # every thread of this process
    }
    if _RAN[0] != len(every):
        out["error"] = f"ran {_RAN[0]} of {len(every)} tasks"
    return out, root, every


def queries(root, every, n: int) -> dict:
    reg = sd.registry
    ids = [t.id for t in every]
    out = {}
    out["lineage_up_s"], graph = timed(lambda: reg.lineage(root))
    out["lineage_nodes"] = len(graph)
    # A graph reads its nodes when first asked for one: this is the call plus that read.
    out["lineage_up_nodes_s"], _ = timed(lambda: reg.lineage(root).nodes)
    out["render_s"], _ = timed(lambda: (graph.to_text(), graph.to_mermaid(), graph.to_dot()))
    out["lineage_down_s"], down = timed(lambda: reg.lineage(every[0], "down"))
    out["lineage_down_nodes"] = len(down)
    out["history_s"], _ = timed(lambda: reg.history(root))
    out["explain_s"], _ = timed(lambda: reg.explain(root))
    variant, _ = tree(n, first=1)  # every leaf shifted by one: a new root id
    out["explain_variant_s"], why = timed(lambda: reg.explain(variant))
    out["explain_variant_differences"] = len(why.differences)
    out["outputs_s"], found = timed(lambda: reg.outputs(ids))
    out["outputs_found"] = len(found)
    out["store_check_s"], complete = timed(lambda: sum(t.complete() for t in every))
    out["store_complete"] = complete
    return out


def main() -> None:
    phase, n = sys.argv[1], int(sys.argv[2])
    out = {"import_s": IMPORT_S, "version": sd.__version__}
    try:
        if phase == "import":
            t = time.perf_counter()
            import stardag.registry  # noqa: F401

            out["import_registry_s"] = time.perf_counter() - t
        else:
            result, root, every = cold(n)
            out.update(result)
            if phase == "queries":
                out.update(queries(root, every, n))
    except BaseException as e:  # noqa: BLE001 - report every failure
        out["error"] = f"{type(e).__name__}: {str(e)[:300]}"
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
