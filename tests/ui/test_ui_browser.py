"""The dashboard as a person uses it: real headless Chromium driven by Playwright.

Each test opens pages of a registry filled by real builds, fails on any console
error or failed request, and saves screenshots under its temp dir (and, with
STARDAG_UI_SCREENSHOTS=docs/images, where docs/ui.md shows them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from playwright.sync_api import expect
from ui_support import Page, Served

import stardag as sd

SUPPORT = Path(__file__).resolve().parents[1] / "support"


def test_every_page_opens_without_errors(page: Page, served: Served) -> None:
    """Builds, a build, a failed build, a task, search and the store all render cleanly."""
    dag, failed = served.ids["dag"], served.ids["builds"][1]
    page.open("/")
    assert page.page.locator("#builds tbody tr").count() == 3
    page.shot("builds")
    page.open(f"/builds/{served.ids['builds'][-1].id}")
    assert page.page.locator("#timeline rect.bar").count() == 5
    page.shot("build")
    page.open(f"/builds/{failed.id}")
    assert "ValueError: boom at 3" in page.page.locator("#failures pre").inner_text()
    page.shot("build-failed")
    sd.audit(dag, registry=served.registry)
    page.open(f"/tasks/{dag.id}")
    page.page.wait_for_selector("#lineage svg")
    assert page.page.locator("#runs .badge.reproduced").count() == 1
    assert page.page.locator("#lineage .node").count() == 5
    assert "Sum: 45 + 190 = 235" in page.page.locator("#preview").inner_text()
    page.shot("task")
    page.open(f"/tasks/{served.ids['kinds']['table'].id}")
    page.page.wait_for_selector("#preview table")
    page.open("/search?q=total")
    assert page.page.locator("#found-tasks tr").count() == 3
    page.shot("search")
    page.open("/store")
    page.page.wait_for_selector("#gc-refused")
    page.shot("store")
    assert page.page.locator(".error").count() == 0
    assert page.problems == []


def test_click_from_a_build_to_a_task_to_its_upstream(page: Page, served: Served) -> None:
    """Builds -> the build -> its root task in the timeline -> an upstream node in the graph."""
    dag = served.ids["dag"]
    page.open("/")
    page.page.click(f"#builds a[href='/builds/{served.ids['builds'][-1].id}']")
    page.page.wait_for_selector("#timeline rect.bar")
    page.page.click(f"#timeline a[href='/tasks/{dag.id}']")
    page.page.wait_for_selector(f"#lineage .node.current[data-id='{dag.id}']")
    page.page.click(f"#lineage .node[data-id='{dag.a.id}']")
    page.page.wait_for_selector(f"#lineage .node.current[data-id='{dag.a.id}']")
    assert page.page.url == f"{served.url}/tasks/{dag.a.id}"
    assert page.page.locator("h1").inner_text().startswith("ui_tasks.total")
    page.page.go_back()
    page.page.wait_for_selector(f"#lineage .node.current[data-id='{dag.id}']")
    assert page.problems == []


BIG_GRAPH = """() => {
  const nodes = [], edges = [], id = (k) => k.toString(16).padStart(64, "0");
  for (let layer = 0; layer < 10; layer++) for (let i = 0; i < 100; i++) {
    const k = layer * 100 + i;
    nodes.push({ id: id(k), label: "big.step" + layer, version: "", known: true, digest: null });
    if (layer) edges.push({ task_id: id(k), dep_id: id(k - 100), kind: "static" });
  }
  window.StardagGraph.draw(document.getElementById("lineage"), { nodes, edges }, id(0), () => {});
}"""


def test_a_big_graph_shows_names_once_zoomed_in_to_read_them(page: Page, served: Served) -> None:
    """A small graph is named at once; 1,000 tasks drawn whole get names when zoomed in,
    those near the view."""
    page.open(f"/tasks/{served.ids['dag'].id}")
    graph = page.page.locator("#lineage")
    expect(graph).to_have_attribute("data-labelled", "true")
    assert page.page.locator("#lineage .node text").count() == 2 * 5
    page.page.evaluate(BIG_GRAPH)
    assert graph.get_attribute("data-labelled") == "false"
    assert page.page.locator("#lineage .node").count() == 1000
    assert page.page.locator("#lineage .node text").count() == 0
    graph.scroll_into_view_if_needed()
    box = graph.bounding_box()
    assert box is not None
    page.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(20):  # each notch zooms in by 1.15
        page.page.mouse.wheel(0, -100)
    expect(graph).to_have_attribute("data-labelled", "true")
    assert 0 < page.page.locator("#lineage .node text").count() < 2 * 1000  # those in view
    assert page.problems == []


def test_a_build_in_another_process_appears_and_finishes(page: Page, served: Served) -> None:
    """The builds page shows a build that another process runs, live, until it ends."""
    page.open("/")
    script = textwrap.dedent(
        """
        import stardag as sd
        import ui_tasks
        sd.build(ui_tasks.slow(seconds=4.0, tag="live"))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    builder = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        row = page.page.locator("#builds tr[data-status='running']")
        row.wait_for(timeout=30_000)
        page.shot("builds-live")
        build_id = row.get_attribute("data-build")
        finished = page.page.locator(
            f"#builds tr[data-build='{build_id}'][data-status='succeeded']"
        )
        finished.wait_for(timeout=60_000)
    finally:
        assert builder.wait(timeout=60) == 0
    assert page.problems == []


def test_the_live_list_keeps_older_builds_and_asks_for_the_newest_page_only(
    page: Page, served: Served
) -> None:
    """After "Older builds", the two-second refresh keeps every row and asks for 50 builds."""
    import ui_tasks

    for limit in range(100, 150):
        sd.build(ui_tasks.numbers(limit=limit), registry=served.registry)
    total = len(sd.registry.builds(limit=None, registry=served.registry))
    asked: list[str] = []
    page.page.on("request", lambda r: asked.append(r.url) if "/api/v1/builds?" in r.url else None)
    page.open("/")
    page.page.click("#builds + p button")
    rows = page.page.locator("#builds tbody tr")
    rows.nth(total - 1).wait_for()
    table = page.page.locator("#builds")
    done = table.get_attribute("data-refreshes") or ""
    # Then a live refresh, drawn after the older builds were shown.
    expect(table).not_to_have_attribute("data-refreshes", done, timeout=30_000)
    assert rows.count() == total > 50
    assert all(u.endswith("/builds?limit=50") or "&before=" in u for u in asked), asked
    assert page.problems == []


def test_a_running_build_page_follows_its_timeline(page: Page, served: Served) -> None:
    """A running build's page redraws its timeline until the build ends."""
    script = textwrap.dedent(
        """
        import stardag as sd
        import ui_tasks
        sd.build([ui_tasks.slow(seconds=1.0, tag="a"), ui_tasks.slow(seconds=2.5, tag="b")],
                 max_workers=2)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    before = {b.id for b in sd.registry.builds(registry=served.registry)}
    builder = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        build_id = _new_build(served, before)
        page.open(f"/builds/{build_id}")
        page.page.wait_for_selector("h1 .badge.succeeded", timeout=60_000)
        page.page.wait_for_selector("#timeline rect.bar.computed >> nth=1")
    finally:
        assert builder.wait(timeout=60) == 0
    assert page.page.locator("#timeline rect.bar.running").count() == 0
    assert page.problems == []


def _new_build(served: Served, before: set[str]) -> str:
    import time

    for _ in range(600):
        fresh = [b.id for b in sd.registry.builds(registry=served.registry) if b.id not in before]
        if fresh:
            return fresh[0]
        time.sleep(0.05)
    raise AssertionError("the other process never started its build")


def test_a_parameter_holding_html_is_shown_as_text(page: Page, served: Served) -> None:
    """A parameter with <script> and HTML shows as its text; nothing of it runs or renders."""
    import ui_tasks

    hostile = '<script>window.__owned = 1</script><img src=x onerror="window.__owned = 2"><b>b</b>'
    task = ui_tasks.total(values=ui_tasks.numbers(limit=2), label=hostile)
    sd.build(task, registry=served.registry)
    page.open(f"/tasks/{task.id}")
    params = page.page.locator("#params")
    assert json.dumps(hostile) in params.inner_text()  # shown as the JSON string it is
    assert params.locator("script, img, b").count() == 0
    page.open(f"/search?q={task.id[:12]}")
    assert page.page.evaluate("() => window.__owned") is None
    assert page.problems == []
