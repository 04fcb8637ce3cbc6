"""How fast the dashboard answers over a big registry, and draws a big lineage graph.

    python3 scripts/bench/ui.py [--builds 1000] [--per-build 100] [--reps 5] [--json out.json]

Fills a fresh SQLite registry with about 100,000 tasks in 1,000 builds (rows written
straight into the registry's tables: recording that many through real builds takes
minutes and measures the recorder, not the dashboard), one of the builds a 1,000-task
DAG, plus one real build whose output the preview reads. Then it starts `stardag ui`
in its own process and times every API call the pages make, over one kept-alive
connection as a browser would, each `--reps` times: median and worst against the
200 ms budget. Last, headless Chromium (Debian's, through Playwright) opens the task
page of the 1,000-task DAG's root, and the time from navigation to the painted graph
is compared with the 2 s budget (drawn whole, a graph that big shows its tasks as
boxes: their names are drawn when a zoom makes them readable, and that is timed too).
There is no anchor to run beside it (the released stardag's dashboard is a hosted
service), so the ratios printed are to the budgets.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
API_BUDGET_MS = 200.0
DRAW_BUDGET_MS = 2000.0
BIG_LAYERS, BIG_WIDTH = 9, 111  # 9 layers of 111 tasks and one root: a 1,000-task DAG


def _hex(rng: random.Random, n: int = 64) -> str:
    return "".join(rng.choices("0123456789abcdef", k=n))


def fill(url: str, builds: int, per_build: int) -> dict[str, Any]:
    """Rows of `builds` builds of `per_build` tasks each (the first: the big DAG)."""
    import stardag as sd
    from stardag.registry._writes import BUILDS, EDGES, ENVIRONMENTS, OUTPUTS, RUNS, TASKS

    rng = random.Random(14)
    registry = sd.registry.open(url)
    now = time.time() - builds * 60
    env = _hex(rng)
    tasks, edges, outputs, runs, rows = [], [], [], [], []
    big_root = ""
    for b in range(builds):
        build_id, started = _hex(rng, 32), now + b * 60
        ids = _big_dag(rng, edges) if b == 0 else _chain(rng, per_build, edges)
        if b == 0:
            big_root = ids[-1]
        previous_digest = _hex(rng)
        for i, task_id in enumerate(ids):
            digest = previous_digest if i % 5 == 4 else _hex(rng)  # some bytes shared
            previous_digest = digest
            name = f"step{i % 20}"
            spec = json.dumps({"name": name, "namespace": "bench", "params": {"i": i, "b": b}})
            tasks.append(
                dict(
                    id=task_id,
                    namespace="bench",
                    name=name,
                    version="",
                    spec=spec,
                    module="bench_tasks",
                    qualname=name,
                    fingerprint=None,
                    first_seen=started,
                )
            )
            t0 = started + i * 0.01
            runs.append(
                dict(
                    build_id=build_id,
                    task_id=task_id,
                    outcome="computed",
                    started=t0,
                    ended=t0 + 0.01,
                    duration=0.01,
                    error_type=None,
                    error_message=None,
                    traceback=None,
                    digest=digest,
                    size_raw=1000 + i,
                    fingerprint=None,
                )
            )
            outputs.append(
                dict(
                    task_id=task_id,
                    digest=digest,
                    serializer="json",
                    size_raw=1000 + i,
                    size_stored=400 + i,
                    created=t0 + 0.01,
                    build_id=build_id,
                    store=None,
                    last_used=t0 + 0.01,
                )
            )
        rows.append(
            dict(
                id=build_id,
                started=started,
                ended=started + 30,
                status="succeeded",
                roots=json.dumps([ids[-1]]),
                host="bench",
                username="bench",
                pid=1,
                argv=json.dumps(["bench"]),
                cwd="/",
                python_version="3.11",
                platform="bench",
                stardag_version="bench",
                env_digest=env,
                git_commit=None,
                git_dirty=None,
            )
        )

    def write(conn: Any) -> None:
        conn.execute(
            ENVIRONMENTS.insert(),
            [dict(digest=env, python_version="3.11", platform="bench", packages="[]", created=now)],
        )
        for table, data in (
            (BUILDS, rows),
            (TASKS, tasks),
            (EDGES, edges),
            (RUNS, runs),
            (OUTPUTS, outputs),
        ):
            for start in range(0, len(data), 20_000):
                conn.execute(table.insert(), data[start : start + 20_000])

    registry.write(write)
    return {
        "tasks": len(tasks),
        "builds": builds,
        "root": big_root,
        "sample": tasks[len(tasks) // 2],
    }


def _big_dag(rng: random.Random, edges: list[dict[str, str]]) -> list[str]:
    layers = [[_hex(rng) for _ in range(BIG_WIDTH)] for _ in range(BIG_LAYERS)]
    for below, above in itertools.pairwise(layers):
        for i, task_id in enumerate(above):
            for dep in {below[i], below[(i + 1) % BIG_WIDTH]}:
                edges.append(dict(task_id=task_id, dep_id=dep, kind="static"))
    root = _hex(rng)
    edges.extend(dict(task_id=root, dep_id=dep, kind="static") for dep in layers[-1])
    return [*(t for layer in layers for t in layer), root]


def _chain(rng: random.Random, count: int, edges: list[dict[str, str]]) -> list[str]:
    ids = [_hex(rng) for _ in range(count)]
    for i in range(1, count):
        for dep in {ids[i - 1], ids[rng.randrange(i)]}:
            edges.append(dict(task_id=ids[i], dep_id=dep, kind="static"))
    return ids


def real_output(home: str) -> str:
    """One real build into the registry: a text output the preview reads. Its task id."""
    script = (
        "import stardag as sd\n"
        "@sd.task\n"
        "def page(lines: int) -> str:\n"
        "    return 'a line of text\\n' * lines\n"
        "t = page(lines=100_000)\n"
        "sd.build(t)\n"
        "print(t.id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=_env(home),
        check=True,
        cwd=home,
    )
    return done.stdout.strip().splitlines()[-1]


def _env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARDAG_")}
    env["STARDAG_HOME"] = home
    return env


def serve(home: str) -> tuple[subprocess.Popen[str], int]:
    """`stardag ui --port 0` in its own process, and its port."""
    command = [sys.executable, "-m", "stardag", "ui", "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=_env(home))
    assert server.stdout is not None
    line = server.stdout.readline()
    return server, int(line.rsplit(":", 1)[1].strip("/\n"))


def timed(conn: http.client.HTTPConnection, path: str, reps: int) -> tuple[list[float], Any]:
    """Milliseconds of each of `reps` GETs of `path`, and the last answer."""
    times, body = [], None
    for _ in range(reps):
        start = time.perf_counter()
        conn.request("GET", path)
        answer = conn.getresponse()
        data = answer.read()
        times.append((time.perf_counter() - start) * 1000)
        if answer.status != 200:
            sys.exit(f"GET {path}: {answer.status} {data[:300]!r}")
        body = json.loads(data)
    return times, body


def api_calls(port: int, facts: dict[str, Any], real: str, reps: int) -> list[dict[str, Any]]:
    """Every call the pages make, timed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    _, first = timed(conn, "/api/v1/builds?limit=50", 1)
    deep = cursor = first["next"]
    for _ in range(9):  # the cursor of the tenth page (or the last there is)
        _, page = timed(conn, f"/api/v1/builds?limit=50&before={cursor}", 1)
        cursor = page["next"]
        if cursor is None:
            break
        deep = cursor
    root = facts["root"]
    _, root_task = timed(conn, f"/api/v1/tasks/{root}", 1)
    big_build = root_task["output"]["build_id"]
    digest = root_task["output"]["digest"]
    _, graph = timed(conn, f"/api/v1/tasks/{root}/lineage?direction=up", 1)
    source = next(
        n["id"] for n in graph["nodes"] if n["id"] not in {e["task_id"] for e in graph["edges"]}
    )
    sample = facts["sample"]["id"]
    # Every request static/app.js makes, with the parameters it sends (the builds page's
    # live refresh asks for the newest 50 again, and for each older shown build running).
    paths = {
        "builds page": "/api/v1/builds?limit=50",
        "builds, a deep page": f"/api/v1/builds?limit=50&before={deep}",
        "build": f"/api/v1/builds/{big_build}",
        "build runs (1,000 runs, page 1)": f"/api/v1/builds/{big_build}/runs?offset=0&limit=500",
        "build runs (page 2)": f"/api/v1/builds/{big_build}/runs?offset=500&limit=500",
        "task": f"/api/v1/tasks/{sample}",
        "task (real, code on disk)": f"/api/v1/tasks/{real}",
        "task (root of 1,000 tasks)": f"/api/v1/tasks/{root}",
        "task preview (1.5 MB text)": f"/api/v1/tasks/{real}/preview",
        "task history": f"/api/v1/tasks/{sample}/history?limit=100",
        "lineage both (1,000 tasks)": f"/api/v1/tasks/{root}/lineage?direction=both",
        "lineage up, depth 2 (root)": f"/api/v1/tasks/{root}/lineage?direction=up&depth=2",
        "lineage down (a source of the DAG)": f"/api/v1/tasks/{source}/lineage?direction=down",
        "lineage both (chain task)": f"/api/v1/tasks/{sample}/lineage?direction=both",
        "search by name": "/api/v1/search?q=step1",
        "search by id prefix": f"/api/v1/search?q={sample[:8]}",
        "search by digest prefix": f"/api/v1/search?q={digest[:16]}",
        "search by whole digest (task page link)": f"/api/v1/search?q={digest}",
        "output by digest": f"/api/v1/outputs/{digest}",
        "store stats": "/api/v1/store",
        "gc preview (poll)": "/api/v1/store/gc",
        "gc preview, start again": "/api/v1/store/gc?refresh=true",  # last: it starts a pass
    }
    results = []
    for name, path in paths.items():
        times, _ = timed(conn, path, 1 if "refresh" in path else reps)
        results.append({"call": name, "median_ms": statistics.median(times), "max_ms": max(times)})
    return results


def draw(port: int, root: str) -> dict[str, float]:
    """Milliseconds from navigation to the painted 1,000-task graph, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO / "tests" / "support"))
    from ui_support import CHROMIUM, CHROMIUM_FLAGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        found = []
        for _ in range(3):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/tasks/{root}")
            graph = page.wait_for_selector("#lineage[data-painted-ms]", timeout=60_000)
            assert graph is not None
            found.append(
                {
                    "nodes": float(graph.get_attribute("data-nodes") or 0),
                    "layout_and_draw_ms": float(graph.get_attribute("data-drawn-ms") or 0),
                    "navigation_to_paint_ms": float(graph.get_attribute("data-painted-ms") or 0),
                    "zoom_to_names_ms": _zoom_to_names(page),
                }
            )
            page.close()
        browser.close()
    painted = sorted(f["navigation_to_paint_ms"] for f in found)
    best = min(found, key=lambda f: f["navigation_to_paint_ms"])
    return best | {"median_paint_ms": statistics.median(painted), "worst_paint_ms": painted[-1]}


def _zoom_to_names(page: Any) -> float:
    """Milliseconds from a person's zooming in (twenty wheel notches) to the names drawn.

    Names are drawn once they can be read, so a graph drawn whole shows boxes first.
    Playwright's round trips for the wheel events are included.
    """
    graph = page.locator("#lineage")
    graph.scroll_into_view_if_needed()
    box = graph.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    start = time.perf_counter()
    for _ in range(20):
        page.mouse.wheel(0, -100)
    page.wait_for_selector("#lineage[data-labelled='true'] .node text", state="attached")
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)))")
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=1000)
    parser.add_argument("--per-build", type=int, default=100)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stardag-bench-ui-") as home:
        started = time.perf_counter()
        facts = fill("sqlite:///" + os.path.join(home, "registry.db"), a.builds, a.per_build)
        real = real_output(home)
        print(
            f"registry: {facts['tasks']:,} tasks in {facts['builds']:,} builds "
            f"(filled in {time.perf_counter() - started:.1f} s)"
        )
        server, port = serve(home)
        try:
            calls = api_calls(port, facts, real, a.reps)
            drawn = draw(port, facts["root"])
        finally:
            server.terminate()
            server.wait(timeout=30)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end: {load} ({os.cpu_count()} cores)")
    print(f"\n{'API call':40} {'median':>9} {'worst':>9}  worst/budget ({API_BUDGET_MS:.0f} ms)")
    for c in calls:
        ratio = c["max_ms"] / API_BUDGET_MS
        print(
            f"{c['call']:40} {c['median_ms']:7.1f}ms {c['max_ms']:7.1f}ms  {ratio:5.2f}"
            f"{'  OVER' if ratio > 1 else ''}"
        )
    ratio = drawn["worst_paint_ms"] / DRAW_BUDGET_MS
    print(
        f"\nlineage of {drawn['nodes']:.0f} tasks in Chromium: layout and SVG "
        f"{drawn['layout_and_draw_ms']:.0f} ms; navigation to painted graph, best / median / "
        f"worst of 3: {drawn['navigation_to_paint_ms']:.0f} / {drawn['median_paint_ms']:.0f} / "
        f"{drawn['worst_paint_ms']:.0f} ms; worst = {ratio:.2f} of the {DRAW_BUDGET_MS:.0f} ms "
        f"budget{'  OVER' if ratio > 1 else ''}; then zooming in until the names are drawn "
        f"{drawn['zoom_to_names_ms']:.0f} ms"
    )
    if a.json:
        a.json.write_text(json.dumps({"facts": facts, "calls": calls, "draw": drawn}, indent=2))


if __name__ == "__main__":
    main()
