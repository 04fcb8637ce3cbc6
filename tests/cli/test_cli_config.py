"""`stardag config show`: each setting with its value and its source."""

from __future__ import annotations

import json

import pytest
from cli_support import invoke, shell


def test_config_show_names_each_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Home from STARDAG_HOME, a root from its own variable, the grace by default."""
    monkeypatch.setenv("STARDAG_TARGET_ROOTS__EXTRA", "/data/extra")
    monkeypatch.setenv("STARDAG_REMOTE", "s3://team-cache/proj")
    found = {s["name"]: s for s in json.loads(invoke("config", "show", "--json").stdout)}
    assert found["active remote"]["source"] == "STARDAG_REMOTE"
    assert found["home"]["source"] == "STARDAG_HOME"
    assert found["root extra"] == {
        "name": "root extra",
        "value": "/data/extra",
        "source": "STARDAG_TARGET_ROOTS__EXTRA",
    }
    assert found["registry"]["value"].endswith("registry.db")
    assert found["STARDAG_GC_GRACE"]["source"] == "default"


def test_config_show_from_a_fresh_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console script prints the table, sources included."""
    monkeypatch.setenv("STARDAG_REGISTRY_URL", "sqlite:////tmp/elsewhere.db")
    done = shell("config", "show")
    assert done.returncode == 0
    assert "sqlite:////tmp/elsewhere.db" in done.stdout and "STARDAG_REGISTRY_URL" in done.stdout


def test_config_show_reports_the_real_zstd_thread_default() -> None:
    """The zstd worker default shown is the one blobs use."""
    from stardag.maintenance._settings import effective
    from stardag.store._blob import Compression

    shown = {s.name: s.value for s in effective()}
    assert shown["STARDAG_ZSTD_THREADS"] == str(Compression.from_env().threads)
