"""The dashboard's web application: the API router, the pages, and the packaged assets.

Every page is the same small HTML shell (`static/index.html`); `static/app.js` reads
the address and draws the page from the JSON API. Assets are read from the package
once, when the app is made, into a fixed table of names: a request can only ever
get one of those files, so no path it sends reaches the file system, and nothing is
fetched from any other server (no CDN).
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

from stardag._version import __version__
from stardag.ui import _api
from stardag.ui._security import Guard

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGES = ("/", "/builds/{build_id}", "/tasks/{task_id}", "/search", "/store")


def assets() -> dict[str, tuple[bytes, str]]:
    """Every packaged asset by file name, with its content type."""
    found = {}
    for entry in resources.files("stardag.ui").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            found[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return found


def create_app(context: _api.Context, token: str | None, hosts: set[str] | None) -> Guard:
    """The dashboard as an ASGI app, guarded (see `_security`)."""
    app = FastAPI(
        title="Stardag dashboard API",
        version=__version__,
        summary="Read-only: builds, runs, tasks, lineage, search, store statistics, gc preview.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # the interactive docs load their scripts from a CDN
        redoc_url=None,
        redirect_slashes=False,  # a stray slash is a 404, not a redirect built from headers
    )
    app.state.context = context
    app.include_router(_api.router)
    files = assets()
    shell = files["index.html"][0]

    def page() -> HTMLResponse:
        return HTMLResponse(shell, headers={"cache-control": "no-store"})

    for path in PAGES:
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in files:
            raise HTTPException(404, "no such asset")
        body, media = files[name]
        return Response(body, media_type=media, headers={"cache-control": "no-cache"})

    return Guard(app, token, hosts)
