"""`stardag ui`: a local web dashboard and read-only JSON API over the registry and stores.

    stardag ui [--host 127.0.0.1] [--port 8765]

Pages: builds (live while other processes build), a build (timeline, failure,
environment), a task (parameters, code, output and its preview, runs, audits, lineage
graph), search, and the store (sizes, ratios, gc preview). The pages read only the
JSON API under `/api/v1/` (schema at `/api/v1/openapi.json`). Needs the `ui` extra
(`pip install stardag[ui]`: FastAPI and uvicorn); every asset ships in the package.

`app_for(registry, host=..., port=...)` gives the guarded ASGI app (and the token
it needs) for any ASGI server; `bind(host, port)` a listening socket for it;
`serve(registry)` runs it under uvicorn, as the command does.
"""

from __future__ import annotations

from stardag.ui._server import DEFAULT_HOST, DEFAULT_PORT, app_for, bind, serve, url

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "app_for", "bind", "serve", "url"]
