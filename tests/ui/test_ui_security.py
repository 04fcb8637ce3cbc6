"""The dashboard's guards: the token off loopback, the Host check, reads that stay in the store."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_support import Served, serving

import stardag as sd

TOKEN = "a-test-token-of-some-length"


@pytest.fixture
def exposed(stardag_home: Path) -> Iterator[Served]:
    """The dashboard bound to every address (0.0.0.0), so it requires its token."""
    registry = sd.registry.open()
    import ui_tasks

    sd.build(ui_tasks.dag(), registry=registry)
    with serving(registry, host="0.0.0.0", token=TOKEN) as server:
        yield server


@pytest.mark.parametrize("path", ["/", "/store", "/api/v1/builds", "/api/v1/openapi.json"])
def test_non_loopback_refuses_requests_without_the_token(exposed: Served, path: str) -> None:
    """Bound beyond loopback, a request without the token is refused with 401."""
    answer = exposed.get(path)
    assert answer.status == 401
    assert b"builds" not in answer.body and b"openapi" not in answer.body


def test_a_wrong_token_is_refused(exposed: Served) -> None:
    """A wrong token, in any of the three places, is refused too."""
    assert exposed.get("/api/v1/builds", {"Authorization": "Bearer wrong"}).status == 401
    assert exposed.get("/api/v1/builds", {"Cookie": "stardag_ui_token=wrong"}).status == 401
    assert exposed.get("/api/v1/builds?token=wrong").status == 401


def test_the_token_opens_the_api(exposed: Served) -> None:
    """The right token as a bearer header or a query parameter opens the API."""
    assert exposed.get("/api/v1/builds", {"Authorization": f"Bearer {TOKEN}"}).status == 200
    assert exposed.get(f"/api/v1/builds?token={TOKEN}").status == 200


def test_the_printed_url_trades_its_token_for_a_cookie(exposed: Served) -> None:
    """Opening the printed URL sets an HttpOnly cookie and drops the token from the address."""
    answer = exposed.get(f"/store?token={TOKEN}&x=1")
    assert answer.status == 303
    assert answer.headers["location"] == "/store?x=1"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = cookie.split(";")[0]
    assert exposed.get("/store", {"Cookie": session}).status == 200


def test_the_redirect_never_leaves_the_server(exposed: Served) -> None:
    """A path starting with // cannot turn the token redirect into one to another host."""
    answer = exposed.get(f"//evil.example/?token={TOKEN}")
    assert answer.status == 303
    assert answer.headers["location"] == "/evil.example/"


def test_loopback_refuses_a_foreign_host_header(served: Served) -> None:
    """On loopback, a request naming another host (DNS rebinding) is refused."""
    assert served.get("/api/v1/builds", {"Host": "evil.example"}).status == 400
    assert served.get("/api/v1/builds", {"Host": f"localhost:{served.port}"}).status == 200


def test_a_token_shorter_than_16_characters_is_refused(stardag_home: Path) -> None:
    """A short access token is an error, not a weak guard."""
    from stardag.ui import app_for

    with pytest.raises(sd.StardagError, match="at least 16"):
        app_for(sd.registry.open(), host="0.0.0.0", token="short")


def test_a_generated_token_is_required_off_loopback(stardag_home: Path) -> None:
    """Bound beyond loopback without a token given, one is made: never none."""
    from stardag.ui import app_for

    _, token = app_for(sd.registry.open(), host="0.0.0.0")
    assert token is not None and len(token) >= 16
    assert app_for(sd.registry.open(), host="127.0.0.1")[1] is None


SECRET = b"not for the dashboard"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/outputs/..%2F..%2F..%2Fsecret.txt",
        "/api/v1/outputs/" + urllib.parse.quote("../../secret.txt", safe=""),
        "/api/v1/outputs/%2Fetc%2Fpasswd",
        "/api/v1/outputs/" + "a" * 63 + "%2F",
        "/api/v1/outputs/" + "A" * 64,
        "/api/v1/tasks/..%2F..%2Fsecret.txt/preview",
        "/api/v1/tasks/" + "0" * 62 + "..%2F/preview",
        "/static/..%2F..%2F_api.py",
        "/static/../../../secret.txt",
        "/static/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/../../secret.txt",
    ],
)
def test_a_crafted_digest_or_path_cannot_read_outside_the_store(
    served: Served, stardag_home: Path, path: str
) -> None:
    """Digests and asset names that try to climb out of the store read nothing."""
    (stardag_home / "secret.txt").write_bytes(SECRET)
    (stardag_home / "store" / "secret.txt").write_bytes(SECRET)
    answer = served.get(path)
    assert answer.status in (400, 404, 422), (path, answer.status)
    assert SECRET not in answer.body
    assert b"def " not in answer.body  # no Python source of the package either


def test_a_digest_missing_from_the_store_is_404(served: Served) -> None:
    """A well-formed digest nobody recorded is 404, not a read attempt elsewhere."""
    assert served.get("/api/v1/outputs/" + "ab" * 32).status == 404


def test_every_response_forbids_inline_script_and_framing(served: Served) -> None:
    """Pages, assets and API answers carry a CSP without inline script, and no framing."""
    for path in ("/", "/static/app.js", "/api/v1/builds", "/api/v1/tasks/zz"):
        headers = {k.lower(): v for k, v in served.get(path).headers.items()}
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_the_api_is_read_only(served: Served, method: str) -> None:
    """Nothing but GET is routed: every write method is refused."""
    for path in ("/api/v1/builds", "/api/v1/store/gc", f"/api/v1/tasks/{served.ids['dag'].id}"):
        assert served.get(path, method=method).status == 405
