"""Large outputs: write and load 256 MiB arrays through our store, next to np.save and
the released stardag 0.28.0, and next to the machine's limits measured in the same run.

    .venv/bin/python scripts/bench/blobs.py [--mib 256] [--reps 3] [--json out.json]

Payloads: `int64_small` (integers in [0, 1000): compressible) and `float64` (standard
normal: incompressible). Each write and load runs in a fresh process, which makes the
array outside the timings, warms memory, then times `sd.build(task)` (the write) and
`task.load()` after evicting the store from the page cache (the cold load). Peak extra
memory is the rise of the process's peak RSS over the RSS just before each operation
(reset through /proc/self/clear_refs), in units of the output size.

Modes: `ours` (STARDAG_FSYNC=0, the default), `ours+fsync` (durable), `np.save` (+fsync,
np.load), `stardag-0.28` (installed once into ~/.cache/stardag-bench/venv by this script).
Limits, on the same bytes: blake3 (one thread, 1 MiB updates), zstd level 1 compress and
decompress (one thread), a disk write with fsync, and a cold read of that file.
"""

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
from typing import Any

MiB = 1 << 20
PAYLOADS = ("int64_small", "float64")
MODES = ("ours", "ours+fsync", "np.save", "stardag-0.28")
OLD_VENV = Path.home() / ".cache" / "stardag-bench" / "venv"


def make_payload(name: str, mib: int) -> Any:
    import numpy as np

    rng = np.random.default_rng(0)
    n = mib * MiB // 8
    if name == "float64":
        return rng.standard_normal(n)
    return rng.integers(0, 1000, n, dtype=np.int64)


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def measured(fn: Any) -> tuple[Any, float, float]:
    """(result, seconds, peak extra MiB) of fn()."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS to the current RSS
    before = rss_kib("VmRSS")
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    return result, seconds, (rss_kib("VmHWM") - before) / 1024


def evict(root: str) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


def warm(mib: int) -> None:
    """Touch and free memory in a child, so first-touch costs stay out of the timings."""
    import numpy as np

    pid = os.fork()
    if pid == 0:
        blocks = [np.ones(64 * MiB // 8) for _ in range(max(1, mib // 64))]
        del blocks
        os._exit(0)
    os.waitpid(pid, 0)


# -- one measurement, in a fresh process (ours or stardag 0.28.0's interpreter) ----------


def worker(mode: str, payload: str, mib: int, workdir: str) -> dict[str, float]:
    import numpy as np

    array = make_payload(payload, mib)
    warm(3 * mib)
    if mode == "np.save":
        return np_save(array, workdir)
    os.environ["STARDAG_TARGET_ROOTS__DEFAULT"] = workdir
    os.environ["STARDAG_NO_REGISTRY"] = "1"
    os.environ["STARDAG_FSYNC"] = "1" if mode == "ours+fsync" else "0"
    os.chdir(workdir)
    import stardag as sd

    @sd.task
    def big(mib: int, payload: str) -> np.ndarray:
        return array

    task = big(mib=mib, payload=payload)
    _, write_s, write_mem = measured(lambda: sd.build(task))
    evict(workdir)
    loaded, load_s, load_mem = measured(task.load)
    assert np.array_equal(loaded, array)
    return {"write_s": write_s, "load_cold_s": load_s, "write_mem": write_mem, "load_mem": load_mem}


def np_save(array: Any, workdir: str) -> dict[str, float]:
    import numpy as np

    path = os.path.join(workdir, "array.npy")

    def write() -> None:
        with open(path, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())

    _, write_s, write_mem = measured(write)
    evict(workdir)
    _, load_s, load_mem = measured(lambda: np.load(path))
    return {"write_s": write_s, "load_cold_s": load_s, "write_mem": write_mem, "load_mem": load_mem}


def limits(payload: str, mib: int, workdir: str) -> dict[str, float]:
    """MiB/s of blake3, zstd L1 both ways, fsynced write and cold read, on the payload."""
    import blake3
    import zstandard

    view = memoryview(make_payload(payload, mib)).cast("B")
    warm(3 * mib)
    chunks = [view[i : i + MiB] for i in range(0, len(view), MiB)]
    rates: dict[str, float] = {}

    def rate(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        result = fn()
        rates[name] = mib / (time.perf_counter() - start)
        return result

    hasher = blake3.blake3()
    rate("blake3", lambda: [hasher.update(c) for c in chunks])
    compressed = rate("zstd_l1", lambda: zstandard.ZstdCompressor(level=1).compress(view))
    rate("unzstd", lambda: zstandard.ZstdDecompressor().decompress(compressed))
    path = os.path.join(workdir, "limits.bin")

    def write() -> None:
        with open(path, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())

    rate("disk_fsync", write)
    evict(workdir)
    buffer = bytearray(len(view))
    rate("cold_read", lambda: open(path, "rb").readinto(buffer))  # noqa: SIM115
    return rates


# -- driver -------------------------------------------------------------------------------


def old_python() -> str:
    python = OLD_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing stardag==0.28.0 into {OLD_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(OLD_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "stardag==0.28.0", "numpy"]
        subprocess.run(pip, check=True)
    return str(python)


def run(python: str, *args: str) -> dict[str, float]:
    workdir = tempfile.mkdtemp(prefix="blobs-bench-")
    try:
        out = subprocess.run(
            [python, __file__, "--worker", *args, "--workdir", workdir],
            check=True,
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("STARDAG_")},
        ).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def report(mib: int, results: dict[str, Any]) -> None:
    print(f"\n{mib} MiB outputs (MiB/s, medians; memory: peak extra / output size)\n")
    print("| payload | mode | write | cold load | write mem | load mem |")
    print("|---|---|---:|---:|---:|---:|")
    for payload in PAYLOADS:
        for mode in MODES:
            row = results[payload].get(mode)
            if row:
                print(
                    f"| {payload} | {mode} | {mib / row['write_s']:.0f} | "
                    f"{mib / row['load_cold_s']:.0f} | {row['write_mem'] / mib:.2f}x | "
                    f"{row['load_mem'] / mib:.2f}x |"
                )
    print("\n| payload | blake3 | zstd L1 | unzstd | disk write+fsync | cold read |")
    print("|---|---:|---:|---:|---:|---:|")
    for payload in PAYLOADS:
        lim = results[payload]["limits"]
        print(
            f"| {payload} | {lim['blake3']:.0f} | {lim['zstd_l1']:.0f} | {lim['unzstd']:.0f} | "
            f"{lim['disk_fsync']:.0f} | {lim['cold_read']:.0f} |"
        )
    print("\n| ratio | measured | goal |")
    print("|---|---:|---:|")
    for name, value, goal in ratios(mib, results):
        print(f"| {name} | {value:.2f} | {goal} |")


def ratios(mib: int, results: dict[str, Any]) -> list[tuple[str, float, str]]:
    def speed(payload: str, mode: str, key: str) -> float:
        return float(mib / results[payload][mode][key])

    def have(*modes: str) -> bool:
        return all(mode in results[p] for mode in modes for p in PAYLOADS)

    ints, floats, old = "int64_small", "float64", "stardag-0.28"
    out = []
    if have("ours+fsync"):
        lim = results[ints]["limits"]
        ceiling = min(lim["blake3"], lim["zstd_l1"], lim["disk_fsync"])
        value = speed(ints, "ours+fsync", "write_s") / ceiling
        out.append(("durable write, ints / min(blake3, zstd L1, disk)", value, ">= 0.60"))
    for mode in ("ours+fsync", "ours"):
        if have(mode, old):
            for payload, goal in ((ints, ">= 0.75"), (floats, ">= 1.00")):
                value = speed(payload, mode, "write_s") / speed(payload, old, "write_s")
                out.append((f"write {payload}, {mode} / stardag 0.28", value, goal))
    if have("ours", old):
        for payload in (ints, floats):
            value = speed(payload, "ours", "load_cold_s") / speed(payload, old, "load_cold_s")
            out.append((f"cold load {payload}, ours / stardag 0.28", value, ">= 0.75"))
    for payload in (ints, floats):
        for mode in ("ours", "ours+fsync", old):
            if mode in results[payload]:
                row = results[payload][mode]
                peak = max(row["write_mem"], row["load_mem"]) / mib
                out.append((f"peak extra memory {payload}, {mode} (x output)", peak, "<= 1.25"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of modes")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "PAYLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, payload = args.worker
        if mode == "limits":
            result = limits(payload, args.mib, args.workdir)
        else:
            result = worker(mode, payload, args.mib, args.workdir)
        print(json.dumps(result))
        return
    modes = args.modes.split(",")
    pythons = {mode: sys.executable for mode in modes if mode != "stardag-0.28"}
    if "stardag-0.28" in modes:
        pythons["stardag-0.28"] = old_python()
    results: dict[str, Any] = {p: {} for p in PAYLOADS}
    for payload in PAYLOADS:
        results[payload]["limits"] = median(
            [
                run(sys.executable, "limits", payload, "--mib", str(args.mib))
                for _ in range(args.reps)
            ]
        )
        for mode, python in pythons.items():
            rows = [run(python, mode, payload, "--mib", str(args.mib)) for _ in range(args.reps)]
            results[payload][mode] = median(rows)
            print(f"{payload} {mode}: {results[payload][mode]}", file=sys.stderr, flush=True)
    report(args.mib, results)
    if args.json:
        Path(args.json).write_text(json.dumps({"mib": args.mib, "results": results}, indent=1))


if __name__ == "__main__":
    main()
