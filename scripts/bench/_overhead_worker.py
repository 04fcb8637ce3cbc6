"""One measurement for overhead.py, in this process; prints one `RESULT {json}` line.

Usage: python _overhead_worker.py PHASE SHAPE N   (run in the store dir, env set by the driver)

  import  only `import stardag`
  cold    construct the DAG, build it (every task body runs), build again in the same
          process (nothing runs), load the root
  noop    a fresh process against the store `cold` filled: construct and build (nothing runs)
  small   the small pipeline (10 tasks) cold, the whole process timed by the driver
  naps    50 tasks that each sleep 0.1 s, built cold (BENCH_MAX_WORKERS=N: max_workers=N)
  floor   no stardag: the unavoidable work per task in plain Python, one thread (hash the
          task's canonical JSON with blake3, read its inputs' files, write its value to a temp
          file, rename it into place, stat it), through plain file descriptors (`os.open`:
          buffered file objects cost ~20 us more per task here)
  joblib  the same tree through joblib.Memory (each call hashed, pickled and stored)
  dask    the same tree as a Dask graph on Dask's threaded scheduler (nothing stored)

Shapes: `chain` (task k depends on task k-1: N tasks, depth N) and `tree` (a binary
reduction tree over (N+1)//2 leaves: 2*leaves-1 tasks, depth log2 N).

Uses only the API that stardag 0.28.0 and ours share: @sd.task, sd.Depends[int], sd.build,
task.load(). No `from __future__ import annotations` here: stardag 0.28.0 picks the
serializer from the evaluated return annotation.
"""

import json
import resource
import sys
import time

_t0 = time.perf_counter()
import stardag as sd  # noqa: E402

IMPORT_S = time.perf_counter() - _t0
_RAN = [0]  # task bodies executed in this process


@sd.task
def leaf(i: int) -> int:
    _RAN[0] += 1
    return i


@sd.task
def step(prev: sd.Depends[int], i: int) -> int:
    _RAN[0] += 1
    return prev + i


@sd.task
def add(a: sd.Depends[int], b: sd.Depends[int]) -> int:
    _RAN[0] += 1
    return a + b


def construct(shape: str, n: int):
    """The root task of the DAG and (number of tasks, the root's expected value)."""
    if shape == "chain":
        root = leaf(i=0)
        for k in range(1, n):
            root = step(prev=root, i=k)
        return root, n, n * (n - 1) // 2
    leaves = (n + 1) // 2
    level = [leaf(i=k) for k in range(leaves)]
    while len(level) > 1:
        pairs = [add(a=level[j], b=level[j + 1]) for j in range(0, len(level) - 1, 2)]
        level = pairs + level[len(level) - len(level) % 2 :]  # an odd one out moves up
    return level[0], 2 * leaves - 1, leaves * (leaves - 1) // 2


def build_options() -> dict:
    """`max_workers` from BENCH_MAX_WORKERS (ours only; unset: the default pool)."""
    import os

    raw = os.environ.get("BENCH_MAX_WORKERS")
    return {"max_workers": int(raw)} if raw else {}


def timed_build(root) -> tuple[float, int]:
    """Seconds that `sd.build(root)` took and how many task bodies it ran."""
    ran, t = _RAN[0], time.perf_counter()
    sd.build(root, **build_options())
    return time.perf_counter() - t, _RAN[0] - ran


def small() -> dict:
    """Ten tasks: five leaves, four sums, one more on top; built cold."""
    level = [leaf(i=k) for k in range(5)]
    a, b = add(a=level[0], b=level[1]), add(a=level[2], b=level[3])
    root = add(a=add(a=a, b=b), b=add(a=level[4], b=level[4]))
    sd.build(root)
    return {"tasks": 10, "error": "wrong value"} if root.load() != 14 else {"tasks": 10}


@sd.task
def nap(i: int) -> int:
    _RAN[0] += 1
    time.sleep(0.1)
    return i


def naps() -> dict:
    """50 tasks that each sleep 0.1 s (I/O-like: they release the GIL), built cold."""
    tasks = [nap(i=k) for k in range(50)]
    t = time.perf_counter()
    sd.build(tasks, **build_options())
    out = {"tasks": 50, "cold_s": time.perf_counter() - t}
    return out if _RAN[0] == 50 else {**out, "error": f"ran {_RAN[0]} of 50"}


def tree_keys(n: int):
    """The tree as (key, deps) in dependency order, and the number of leaves."""
    leaves = (n + 1) // 2
    level = [(f"leaf-{k}", ()) for k in range(leaves)]
    order = list(level)
    while len(level) > 1:
        pairs = [
            (
                f"add-{level[j][0]}-{level[j + 1][0]}"[:60] + f"-{len(order) + j}",
                (level[j][0], level[j + 1][0]),
            )
            for j in range(0, len(level) - 1, 2)
        ]
        order += pairs
        level = pairs + level[len(level) - len(level) % 2 :]
    return order, leaves


def floor(n: int, root: str) -> dict:
    """The unavoidable work of a cold build of the tree, in plain Python (see the module doc)."""
    import os

    from blake3 import blake3

    order, _ = tree_keys(n)
    paths: dict[str, str] = {}
    create = os.O_WRONLY | os.O_CREAT | os.O_EXCL  # plain descriptors: no buffered file objects
    t = time.perf_counter()
    for index, (key, deps) in enumerate(order):
        params = {"i": index} if not deps else {d: {"$task": paths[d][-64:]} for d in deps}
        spec = json.dumps(
            {"name": key[:4], "params": params}, sort_keys=True, separators=(",", ":")
        )
        digest = blake3(spec.encode()).hexdigest()
        value = index if not deps else 0
        for dep in deps:
            fd = os.open(paths[dep], os.O_RDONLY)
            try:
                value += int(os.read(fd, 8192))
            finally:
                os.close(fd)
        path = os.path.join(root, digest)
        fd = os.open(path + ".tmp", create, 0o666)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)
        os.replace(path + ".tmp", path)
        os.stat(path)
        paths[key] = path
    return {"tasks": len(order), "cold_s": time.perf_counter() - t}


def joblib_tree(n: int, root: str) -> dict:
    """The tree through joblib.Memory, bottom-up, every call computed and stored."""
    import joblib

    memory = joblib.Memory(root, verbose=0)
    cached_leaf = memory.cache(lambda i: i)
    cached_add = memory.cache(lambda a, b: a + b)
    order, _ = tree_keys(n)
    values: dict[str, int] = {}
    t = time.perf_counter()
    for index, (key, deps) in enumerate(order):
        if deps:
            values[key] = cached_add(values[deps[0]], values[deps[1]])
        else:
            values[key] = cached_leaf(index)
    return {"tasks": len(order), "cold_s": time.perf_counter() - t}


def dask_tree(n: int) -> dict:
    """The tree as a Dask graph on the threaded scheduler (in memory, nothing stored)."""
    import operator

    import dask.threaded

    order, _ = tree_keys(n)
    graph = {
        key: (operator.add, *deps) if deps else (int, index)
        for index, (key, deps) in enumerate(order)
    }
    t = time.perf_counter()
    dask.threaded.get(graph, order[-1][0])
    return {"tasks": len(order), "cold_s": time.perf_counter() - t}


def measure(phase: str, shape: str, n: int) -> dict:
    t = time.perf_counter()
    root, tasks, expected = construct(shape, n)
    out: dict = {"tasks": tasks, "construct_s": time.perf_counter() - t}
    checks = []
    if phase == "cold":
        out["cold_s"], ran = timed_build(root)
        checks.append(("cold build ran", ran, tasks))
        out["noop_s"], ran = timed_build(root)
        checks.append(("in-process no-op ran", ran, 0))
    else:
        out["fresh_build_s"], ran = timed_build(root)
        out["fresh_s"] = out["construct_s"] + out["fresh_build_s"]
        checks.append(("fresh no-op ran", ran, 0))
    checks.append(("root value", root.load(), expected))
    bad = [f"{what} {got}, expected {want}" for what, got, want in checks if got != want]
    if bad:
        out["error"] = "; ".join(bad)
    return out


def main() -> None:
    phase, shape, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    out: dict = {"import_s": IMPORT_S, "version": sd.__version__, "module": sd.__file__}
    anchors = {
        "small": lambda: small(),
        "naps": lambda: naps(),
        "floor": lambda: floor(n, "."),
        "joblib": lambda: joblib_tree(n, "joblib"),
        "dask": lambda: dask_tree(n),
    }
    if phase != "import":
        try:
            out.update(anchors[phase]() if phase in anchors else measure(phase, shape, n))
        except BaseException as e:  # noqa: BLE001 - report every failure, RecursionError included
            out["error"] = f"{type(e).__name__}: {str(e)[:200]}"
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out, default=str), flush=True)


if __name__ == "__main__":
    main()
