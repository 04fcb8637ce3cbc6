"""Serving the dashboard: the bind address, the access token, and uvicorn.

`serve` binds 127.0.0.1 unless told otherwise. Any other address makes a fresh
random access token (or takes the one given) that every request must carry; the
printed URL holds it. Invariant: a non-loopback server never runs without a token.
"""

from __future__ import annotations

import secrets
import socket
import sys
from collections.abc import Sequence
from typing import TextIO

from stardag import _config
from stardag._errors import StardagError
from stardag.registry import Registry
from stardag.store._store import Store, store_for
from stardag.ui import _api, _queries
from stardag.ui._app import create_app
from stardag.ui._gcview import GcPreviewer
from stardag.ui._security import Guard, is_loopback, loopback_hosts

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def context(registry: Registry, roots: dict[str, str] | None = None) -> _api.Context:
    """What the API reads: `registry`, and the stores of `roots` (default: as configured)."""
    roots = dict(roots if roots is not None else _config.target_roots())
    keys = sorted(roots, key=lambda k: (k != "default", k))
    roots = {k: roots[k] for k in keys}
    stores: Sequence[Store] = [store_for(url) for url in roots.values()]
    default = stores[0] if stores else store_for(_config.target_root())
    totals = _queries.TotalsCache(registry)
    totals.refresh()  # warm: the store page's first request should not wait for it
    return _api.Context(registry, roots, list(stores), GcPreviewer(default, registry), totals)


def app_for(
    registry: Registry,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    roots: dict[str, str] | None = None,
) -> tuple[Guard, str | None]:
    """The guarded app for a bind address, and the token it requires (None on loopback)."""
    if is_loopback(host):
        return create_app(context(registry, roots), token, loopback_hosts(port)), token
    token = token or secrets.token_urlsafe(24)
    if len(token) < 16:
        raise StardagError("an access token must be at least 16 characters long")
    return create_app(context(registry, roots), token, None), token


def url(host: str, port: int, token: str | None) -> str:
    """The address to open: loopback by name, others as given, with the token."""
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = socket.gethostname()
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said out loud: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    # sockets whose `proto` says TCP, and accepted sockets inherit it from this one. With
    # proto 0, a response's body waited for the ACK of its headers, which a client on a
    # kept-alive connection delays by 40 ms: every answer after a connection's first.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StardagError(
            f"cannot serve on {host}:{port}: {exc.strerror or exc}; pick another --port "
            "(or --port 0 for any free one)"
        ) from None
    sock.listen(128)
    return sock


def serve(
    registry: Registry,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    out: TextIO = sys.stdout,
) -> None:
    """Serve the dashboard until interrupted, after printing its URL."""
    import uvicorn

    sock = bind(host, port)
    port = sock.getsockname()[1]
    app, token = app_for(registry, host=host, port=port, token=token)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    print(f"Stardag dashboard at {url(host, port, token)}", file=out, flush=True)
    if token:
        print("every request needs that token (Ctrl+C stops the server)", file=out, flush=True)
    uvicorn.Server(config).run(sockets=[sock])
