"""Helpers of the dashboard tests: uvicorn on 127.0.0.1 in a thread, and pages in Chromium.

Chromium is Debian's (`/usr/bin/chromium`, installed by scripts/_system_deps.sh),
driven by Playwright for Python through `executable_path`: no browser download.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import stardag as sd

CHROMIUM = os.environ.get("STARDAG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Response:
    """What a request to the served dashboard got back."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Served:
    """A running dashboard: its base URL and the token it needs (None on loopback)."""

    url: str
    token: str | None
    port: int
    registry: sd.registry.Registry
    ids: dict[str, Any] = field(default_factory=dict)

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> Response:
        request = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        opener = urllib.request.build_opener(_NoRedirect())
        try:
            with opener.open(request, timeout=30) as answer:
                return Response(answer.status, dict(answer.headers.items()), answer.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, dict(exc.headers.items()), exc.read())

    def api(self, path: str) -> Any:
        answer = self.get("/api/v1" + path, self._auth())
        assert answer.status == 200, (path, answer.status, answer.body[:500])
        return answer.json()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@contextlib.contextmanager
def serving(
    registry: sd.registry.Registry, host: str = "127.0.0.1", token: str | None = None
) -> Iterator[Served]:
    """The dashboard of `registry` on a free port of `host`, until the block ends."""
    import uvicorn

    from stardag.ui import app_for
    from stardag.ui._server import bind

    sock = bind(host, 0)
    port = sock.getsockname()[1]
    app, token = app_for(registry, host=host, port=port, token=token)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", token, port, registry)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def build_filled(registry: sd.registry.Registry) -> dict[str, Any]:
    """Real builds into `registry`: the DAG, a failure, and one output of each serializer."""
    import ui_tasks as t

    dag = t.dag()
    sd.build(dag, registry=registry)
    failing = t.boom(x=t.total(values=t.numbers(limit=3)))
    with pytest.raises(ValueError, match="boom"):
        sd.build(failing, registry=registry)
    kinds = {
        "array": t.matrix(rows=3, cols=4),
        "table": t.frame(rows=30),
        "bytes": t.blob(size=8192),
        "pickle": t.point(x=1),
        "text": t.text(repeat=1000),
    }
    sd.build(list(kinds.values()), registry=registry)
    builds = sd.registry.builds(registry=registry)
    return {"dag": dag, "failing": failing, "kinds": kinds, "builds": builds}


@dataclass
class Page:
    """A browser page that records console errors, failed requests and page errors."""

    page: Any
    problems: list[str]
    base: str
    shots: Path

    def open(self, path: str) -> None:
        self.page.goto(self.base + path)
        self.wait()

    def wait(self) -> None:
        self.page.wait_for_selector("body[data-ready]", state="attached")

    def shot(self, name: str) -> Path:
        path = self.shots / f"ui-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        keep = os.environ.get("STARDAG_UI_SCREENSHOTS")  # docs/images: refresh the docs' pictures
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        return path
