"""The JSON API under /api/v1/, over a registry filled by real builds, served by uvicorn."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from ui_support import Served, serving

import stardag as sd


def test_builds_newest_first_with_counts(served: Served) -> None:
    """Builds come newest first, each with its runs counted by outcome."""
    builds = served.api("/builds")["builds"]
    assert [b["id"] for b in builds] == [b.id for b in served.ids["builds"]]
    dag_build = builds[-1]
    assert dag_build["status"] == "succeeded"
    assert dag_build["counts"] == {"computed": 5}
    assert builds[1]["status"] == "failed"


def test_builds_page_by_cursor(served: Served) -> None:
    """`next` is a cursor: the pages together are every build once, in order."""
    first = served.api("/builds?limit=2")
    rest = served.api("/builds?limit=2&before=" + first["next"])
    assert rest["next"] is None
    ids = [b["id"] for b in first["builds"] + rest["builds"]]
    assert ids == [b.id for b in served.ids["builds"]]


def test_build_has_environment_runs_and_traceback(served: Served) -> None:
    """A build shows its environment's packages; its runs carry the failure's traceback."""
    failed = served.ids["builds"][1]
    build = served.api(f"/builds/{failed.id[:8]}")
    assert build["id"] == failed.id
    assert any(p.startswith("pydantic==") for p in build["environment"]["packages"])
    runs = served.api(f"/builds/{failed.id}/runs")["runs"]
    boom = next(r for r in runs if r["outcome"] == "failed")
    assert boom["task_id"] == served.ids["failing"].id
    assert "ValueError: boom at 3" in boom["traceback"]


def test_build_runs_page(served: Served) -> None:
    """A build's runs come a page at a time in the order they started."""
    dag_build = served.ids["builds"][-1]
    first = served.api(f"/builds/{dag_build.id}/runs?limit=3")
    second = served.api(f"/builds/{dag_build.id}/runs?offset=3&limit=3")
    assert first["next_offset"] == 3 and second["next_offset"] is None
    started = [r["started"] for r in first["runs"] + second["runs"]]
    assert len(started) == 5 and started == sorted(started)


def test_build_runs_are_the_registry_s_runs_of_the_build(served: Served) -> None:
    """Every field of a build's runs page is what `sd.registry.build` says of its runs."""
    from stardag.ui import _schemas

    for info in served.ids["builds"]:
        runs = sd.registry.build(info.id, registry=served.registry).runs
        expected = [_schemas.Run(**_schemas.run_data(r)).model_dump(mode="json") for r in runs]
        assert served.api(f"/builds/{info.id}/runs")["runs"] == expected


def test_task_shows_params_code_and_output(served: Served) -> None:
    """A task: parameters with dependencies as ids, code location, output, completeness."""
    dag = served.ids["dag"]
    task = served.api(f"/tasks/{dag.id}")
    assert task["params"]["title"] == "Sum"
    assert task["params"]["a"] == {"$task": dag.a.id}
    assert (task["code"]["module"], task["code"]["qualname"]) == ("ui_tasks", "report")
    assert task["code"]["changed"] is False
    assert task["code"]["now"] == task["code"]["built"]
    recorded = sd.registry.outputs([dag.id], registry=served.registry)[dag.id]
    assert task["output"]["digest"] == recorded.digest
    assert task["output"]["serializer"] == "text"
    assert task["complete"] is True


def test_task_by_prefix_and_by_digest(served: Served) -> None:
    """A task may be named by a unique id prefix or by its output's digest."""
    dag = served.ids["dag"]
    assert served.api(f"/tasks/{dag.id[:10]}")["id"] == dag.id
    digest = served.api(f"/tasks/{dag.id}")["output"]["digest"]
    assert served.api(f"/tasks/{digest}")["id"] == dag.id


def test_unknown_task_is_404_and_malformed_is_400(served: Served) -> None:
    """An unknown id is 404 with the library's message; a non-hex one is 400."""
    missing = served.get("/api/v1/tasks/" + "ab" * 32)
    assert missing.status == 404
    assert "ab" * 32 in missing.json()["detail"]
    assert served.get("/api/v1/tasks/not-hex").status == 400


def test_code_changed_since_the_output_was_built(
    stardag_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Editing a task's source after its build flags the task: its code changed."""
    source = tmp_path / "mods" / "edited_tasks.py"
    source.parent.mkdir()
    source.write_text(
        "import stardag as sd\n\n@sd.task\ndef edited(x: int) -> int:\n    return x\n"
    )
    monkeypatch.syspath_prepend(str(source.parent))
    import edited_tasks

    task = edited_tasks.edited(x=1)
    registry = sd.registry.open()
    sd.build(task, registry=registry)
    with serving(registry) as server:
        assert server.api(f"/tasks/{task.id}")["code"]["changed"] is False
        source.write_text(source.read_text().replace("return x", "return x + 1"))
        code = server.api(f"/tasks/{task.id}")["code"]
    assert code["changed"] is True
    assert code["path"] == str(source)
    sys.modules.pop("edited_tasks", None)


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("text", lambda p: p["kind"] == "text" and p["text"].startswith("line of text\n")),
        ("array", lambda p: p["kind"] == "array" and p["shape"] == [3, 4] and "f8" in p["dtype"]),
        ("bytes", lambda p: p["kind"] == "bytes" and p["text"].startswith("00000000  00 01 02")),
        ("pickle", lambda p: p["kind"] == "none" and "unpickling runs code" in p["note"]),
    ],
)
def test_preview_by_serializer(served: Served, kind: str, check: object) -> None:
    """Each serializer gets its capped preview; a pickle is never loaded."""
    task = served.ids["kinds"][kind]
    found = served.api(f"/tasks/{task.id}/preview")
    assert callable(check) and check(found), found


def test_table_preview_shows_first_rows(served: Served) -> None:
    """A DataFrame output previews its first rows and says how many there are."""
    found = served.api(f"/tasks/{served.ids['kinds']['table'].id}/preview")
    assert found["kind"] == "table" and found["total_rows"] == 30
    assert "square" in found["columns"]
    assert len(found["rows"]) == 20 and found["truncated"] is True


def test_text_preview_is_capped(served: Served) -> None:
    """A long text shows its start only, and says it was cut."""
    found = served.api(f"/tasks/{served.ids['kinds']['text'].id}/preview")
    assert len(found["text"]) == 4000 and found["truncated"] is True


def test_history_lists_runs_across_builds(served: Served) -> None:
    """A task's history lists its runs in every build: computed, then cached."""
    dag = served.ids["dag"]
    sd.build(dag, registry=served.registry)
    runs = served.api(f"/tasks/{dag.id}/history")
    assert [r["outcome"] for r in runs] == ["cached", "computed"]


def test_lineage_up_down_and_both(served: Served) -> None:
    """Lineage walks upstream, downstream or both; nodes come dependencies first."""
    dag = served.ids["dag"]
    numbers = dag.a.values
    up = served.api(f"/tasks/{dag.id}/lineage?direction=up")
    assert len(up["nodes"]) == 5 and len(up["edges"]) == 4
    assert up["nodes"][-1]["id"] == dag.id
    down = served.api(f"/tasks/{numbers.id}/lineage?direction=down")
    assert {n["id"] for n in down["nodes"]} == {numbers.id, dag.a.id, dag.id}
    one = served.api(f"/tasks/{dag.a.id}/lineage?direction=both&depth=1")
    assert {n["id"] for n in one["nodes"]} == {numbers.id, dag.a.id, dag.id}


def test_lineage_is_cut_at_the_node_cap(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lineage beyond the cap keeps the tasks nearest the root and says it was cut."""
    from stardag.ui import _api

    monkeypatch.setattr(_api, "MAX_NODES", 3)
    dag = served.ids["dag"]
    cut = served.api(f"/tasks/{dag.id}/lineage?direction=up")
    assert cut["truncated"] is True
    assert {n["id"] for n in cut["nodes"]} == {dag.id, dag.a.id, dag.b.id}


def test_search_by_name_prefix_and_digest(served: Served) -> None:
    """Search finds tasks by name, tasks and builds by id prefix, outputs by digest."""
    dag = served.ids["dag"]
    by_name = served.api("/search?q=TOTAL")
    assert {t["id"] for t in by_name["tasks"]} >= {dag.a.id, dag.b.id}
    assert by_name["families"] == {"ui_tasks.total": 3}  # the DAG's two and the failed build's
    assert served.api(f"/search?q={dag.id[:8]}")["tasks"][0]["id"] == dag.id
    digest = served.api(f"/tasks/{dag.id}")["output"]["digest"]
    hits = served.api(f"/search?q={digest[:16]}")["digests"]
    assert hits[0]["digest"] == digest and hits[0]["producers"][0]["id"] == dag.id
    build = served.ids["builds"][0].id
    assert served.api(f"/search?q={build[:8]}")["builds"] == [build]


def test_search_treats_wildcards_as_text(served: Served) -> None:
    """`%` and `_` in a search are characters, not SQL wildcards."""
    assert served.api("/search?q=to%25al")["tasks"] == []  # would match "total" as LIKE
    assert served.api("/search?q=t_tal")["tasks"] == []
    assert served.api("/search?q=tasks.total")["tasks"]  # the same search, spelled out


def test_output_by_digest(served: Served) -> None:
    """An output by digest names its producers and previews its bytes."""
    task = served.ids["kinds"]["bytes"]
    digest = served.api(f"/tasks/{task.id}")["output"]["digest"]
    found = served.api(f"/outputs/{digest}")
    assert [p["id"] for p in found["producers"]] == [task.id]
    assert found["preview"]["kind"] == "bytes"


def test_a_shared_digest_lists_its_producers_as_the_registry_does(served: Served) -> None:
    """Two tasks with the same bytes: search and the output page list both, newest first."""
    import ui_tasks

    first = ui_tasks.total(values=ui_tasks.numbers(limit=3), label="first")
    second = ui_tasks.total(values=ui_tasks.numbers(limit=3), label="second")
    sd.build(first, registry=served.registry)
    sd.build(second, registry=served.registry)
    digest = served.api(f"/tasks/{second.id}")["output"]["digest"]
    expected = [p.task_id for p in sd.registry.producers(digest, registry=served.registry)]
    assert {first.id, second.id} <= set(expected) and expected[0] == second.id
    hit = served.api(f"/search?q={digest}")["digests"][0]
    assert [p["id"] for p in hit["producers"]] == expected
    assert [p["id"] for p in served.api(f"/outputs/{digest}")["producers"]] == expected


def test_store_stats(served: Served) -> None:
    """Store stats count outputs and blobs, with compression and deduplication ratios."""
    stats = served.api("/store")
    assert stats["outputs"] == 12 and stats["blobs"] <= stats["outputs"]
    assert stats["bytes_raw"] >= stats["bytes_unique"] > 0
    assert stats["compression_ratio"] > 1  # the 8 KiB byte pattern compresses well
    assert stats["roots"]["default"].endswith("store")


def test_gc_preview_refuses_without_roots(served: Served) -> None:
    """With no pins and no gc policy configured, the preview says gc would refuse."""
    view = _ready(served)
    assert "gc needs roots" in view["refused"]
    assert view["blobs_on_disk"] > 0


def test_gc_preview_under_a_configured_policy(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under STARDAG_GC_KEEP_LAST the preview says what would go and why the rest stays."""
    monkeypatch.setenv("STARDAG_GC_KEEP_LAST", "1")
    monkeypatch.setenv("STARDAG_GC_GRACE", "0s")
    view = _ready(served, refresh=True)
    assert view["refused"] is None
    assert view["records"] > 0 and view["bytes"] > 0
    assert {f["family"] for f in view["by_family"]} >= {"ui_tasks.total", "ui_tasks.report"}
    assert any("last 1 builds" in reason for reason in view["kept"])
    assert sd.registry.builds(registry=served.registry)  # nothing was deleted: a dry run
    assert served.api(f"/tasks/{served.ids['dag'].id}")["complete"] is True


def _ready(served: Served, refresh: bool = False) -> dict[str, object]:
    import time

    view = served.api("/store/gc" + ("?refresh=true" if refresh else ""))
    for _ in range(600):
        if view["state"] in ("ready", "failed"):
            break
        time.sleep(0.05)
        view = served.api("/store/gc")
    assert view["state"] == "ready", view
    return view  # type: ignore[no-any-return]


def test_openapi_schema_documents_every_endpoint(served: Served) -> None:
    """The OpenAPI schema lists every endpoint, each GET only."""
    schema = served.api("/openapi.json")
    paths = schema["paths"]
    expected = textwrap.dedent(
        """
        /api/v1/builds /api/v1/builds/{build_id} /api/v1/builds/{build_id}/runs
        /api/v1/tasks/{task} /api/v1/tasks/{task_id}/preview /api/v1/tasks/{task_id}/history
        /api/v1/tasks/{task_id}/lineage /api/v1/outputs/{digest} /api/v1/search
        /api/v1/store /api/v1/store/gc
        """
    ).split()
    assert sorted(paths) == sorted(expected)
    assert all(set(ops) == {"get"} for ops in paths.values())


def test_every_answer_matches_its_documented_model(served: Served) -> None:
    """Answers written as plain JSON still have exactly the shape the schema documents."""
    from pydantic import TypeAdapter

    from stardag.ui import _schemas

    dag = served.ids["dag"]
    build = served.ids["builds"][1].id
    checks = {
        "/builds": _schemas.BuildsPage,
        f"/builds/{build}": _schemas.Build,
        f"/builds/{build}/runs": _schemas.RunsPage,
        f"/tasks/{dag.id}": _schemas.Task,
        f"/tasks/{dag.id}/preview": _schemas.Preview,
        f"/tasks/{dag.id}/history": list[_schemas.Run],
        f"/tasks/{dag.id}/lineage": _schemas.Lineage,
        "/search?q=total": _schemas.Search,
        "/store": _schemas.StoreStats,
        "/store/gc": _schemas.GcPreview,
    }
    for path, model in checks.items():
        answer = served.api(path)
        adapter: TypeAdapter[object] = TypeAdapter(model)
        parsed = adapter.validate_python(answer)
        again = adapter.dump_python(parsed, mode="json")
        assert _keys(again) == _keys(answer), path


def _keys(value: object) -> object:
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(v) for v in value]
    return None


def test_every_endpoint_over_postgresql(stardag_home: Path, postgres_url: str) -> None:
    """The same API over a registry on a real PostgreSQL server answers the same questions."""
    from ui_support import build_filled

    registry = sd.registry.open(postgres_url)
    ids = build_filled(registry)
    dag, builds = ids["dag"], ids["builds"]
    with serving(registry) as server:
        first = server.api("/builds?limit=2")
        rest = server.api("/builds?limit=2&before=" + first["next"])
        assert [b["id"] for b in first["builds"] + rest["builds"]] == [b.id for b in builds]
        assert server.api(f"/builds/{builds[1].id[:8]}")["status"] == "failed"
        runs = server.api(f"/builds/{builds[1].id}/runs")["runs"]
        assert [r["outcome"] for r in runs].count("failed") == 1
        task = server.api(f"/tasks/{dag.id[:10]}")
        assert task["params"]["title"] == "Sum" and task["code"]["changed"] is False
        assert server.api(f"/tasks/{dag.id}/history")[0]["outcome"] == "computed"
        assert len(server.api(f"/tasks/{dag.id}/lineage")["nodes"]) == 5
        assert {t["id"] for t in server.api("/search?q=TOTAL")["tasks"]} >= {dag.a.id, dag.b.id}
        assert server.api("/search?q=t_tal")["tasks"] == []
        digest = task["output"]["digest"]
        assert server.api(f"/search?q={digest[:16]}")["digests"][0]["digest"] == digest
        stats = server.api("/store")
        assert stats["outputs"] == 12 and stats["compression_ratio"] > 1
        assert "gc needs roots" in _ready(server)["refused"]


def test_history_shows_audit_verdicts(served: Served) -> None:
    """A real audit of a task shows in its history with its verdict and both digests."""
    dag = served.ids["dag"]
    sd.audit(dag, registry=served.registry)
    runs = served.api(f"/tasks/{dag.id}/history")
    audited = next(r for r in runs if r["outcome"] == "audited")
    assert audited["verdict"] == "reproduced"
    assert audited["digest"] == audited["recorded_digest"] is not None
