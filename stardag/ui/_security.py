"""Who may talk to the dashboard: the loopback guard, the access token, safe headers.

Bound to a loopback address (the default), the server answers only requests whose
`Host` is that loopback name, so a web page elsewhere cannot reach it by pointing a
DNS name at 127.0.0.1 (DNS rebinding). Bound to any other address, every request
must carry the access token the command printed: as `Authorization: Bearer`, as the
cookie a first visit with `?token=` sets, or as that query parameter itself.
Invariants: a request that fails these checks gets 400 or 401 and reaches no route;
the token is compared in constant time; every response forbids framing, sniffing
and any script, style or connection not from this server (a CSP), so data shown by
a page can never run as code even if a page were to mishandle it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "stardag_ui_token"
HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def is_loopback(host: str) -> bool:
    """Whether a bind address only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_hosts(port: int) -> set[str]:
    """The `Host` values a browser on this machine sends to a loopback server."""
    names = ("127.0.0.1", "localhost", "[::1]")
    return {f"{name}:{port}" for name in names} | set(names)


class Guard:
    """ASGI middleware: the Host check, the token check, and the security headers."""

    def __init__(self, app: App, token: str | None, hosts: set[str] | None) -> None:
        self.app = app
        self.token = token
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if self.hosts is not None and headers.get("host", "") not in self.hosts:
            await _refuse(send, 400, "unexpected Host header: open the URL the server printed")
            return
        if self.token is not None:
            verdict = self._token_verdict(scope, headers)
            if verdict == "refused":
                await _refuse(
                    send, 401, "this server needs its access token: open the URL it printed"
                )
                return
            if verdict == "set-cookie":
                await _redirect_setting_cookie(scope, send, self.token)
                return
        await self.app(scope, receive, _secured(send))

    def _token_verdict(self, scope: Scope, headers: dict[str, str]) -> str:
        assert self.token is not None
        bearer = headers.get("authorization", "")
        if bearer.startswith("Bearer ") and _same(bearer[7:], self.token):
            return "ok"
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001  # a malformed cookie header is no token
            cookie = SimpleCookie()
        if COOKIE in cookie and _same(cookie[COOKIE].value, self.token):
            return "ok"
        given = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))).get("token")
        if given is not None and _same(given, self.token):
            is_page = scope["method"] == "GET" and not scope["path"].startswith("/api/")
            return "set-cookie" if is_page else "ok"
        return "refused"


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _secured(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *HEADERS]
        await send(message)

    return sending


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await _respond(send, status, body, [(b"content-type", b"application/json")])


async def _redirect_setting_cookie(scope: Scope, send: Send, token: str) -> None:
    """Trade `?token=` for a cookie, and drop it from the address bar."""
    query = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode()) if k != "token"]
    path = "/" + scope["path"].lstrip("/")  # never "//host": that would leave this server
    location = path + ("?" + urlencode(query) if query else "")
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    headers = [(b"location", location.encode()), (b"set-cookie", cookie.encode())]
    await _respond(send, 303, b"", headers)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    start = [(b"content-length", str(len(body)).encode()), *headers, *HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
