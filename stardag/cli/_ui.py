"""`stardag ui`: serve the web dashboard (needs the `ui` extra: FastAPI and uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from stardag.cli._app import app
from stardag.cli._common import command, fail, registry


@app.command()
@command
def ui(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; any but loopback needs the token.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to bind (0: any free one).")
    ] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="STARDAG_UI_TOKEN",
            help="Access token for a non-loopback bind (default: a new random one).",
        ),
    ] = None,
) -> None:
    """Serve a read-only dashboard of builds, tasks, lineage and the store; print its URL.

    It binds 127.0.0.1 by default. Bound to any other address, every request must
    carry the access token that the printed URL holds.
    """
    try:
        from stardag.ui import serve
    except ImportError as exc:
        fail(f"stardag ui needs the ui extra: pip install 'stardag[ui]' ({exc})")
    serve(registry(), host=host, port=port, token=token)
