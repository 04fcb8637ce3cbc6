"""`stardag ui`: it serves, prints its URL, and guards anything beyond loopback with a token."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import invoke

import stardag as sd


@pytest.fixture
def registry_made(stardag_home: Path) -> None:
    """A registry with one real build in it."""
    import ui_tasks

    sd.build(ui_tasks.numbers(limit=3), registry=sd.registry.open())


@contextlib.contextmanager
def _serve(*args: str) -> Iterator[str]:
    """`stardag ui --port 0 ARGS` in a process of its own: the line it printed first."""
    command = [sys.executable, "-m", "stardag", "ui", "--port", "0", *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            yield server.stdout.readline()
        finally:
            server.terminate()
            server.wait(timeout=30)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.usefixtures("registry_made")
def test_ui_serves_loopback_without_a_token() -> None:
    """By default it binds 127.0.0.1, prints its URL, and the API answers there."""
    with _serve() as line:
        assert line.startswith("Stardag dashboard at http://127.0.0.1:")
        url = line.split(" at ")[1].strip()
        assert "token" not in url
        assert _status(url + "api/v1/builds") == 200


@pytest.mark.usefixtures("registry_made")
def test_ui_beyond_loopback_prints_a_token_that_every_request_needs() -> None:
    """Bound to 0.0.0.0 it prints a URL with a token; a request without it is refused."""
    with _serve("--host", "0.0.0.0") as line:
        url = line.split(" at ")[1].strip()
        token = url.partition("?token=")[2]
        assert len(token) >= 16
        port = url.split(":")[2].split("/")[0]
        base = f"http://127.0.0.1:{port}/api/v1/builds"
        assert _status(base) == 401
        assert _status(f"{base}?token={token}") == 200


def test_ui_without_a_registry_is_one_line_and_exit_2(stardag_home: Path) -> None:
    """With no registry yet it says so in one line, exit 2, and makes none."""
    result = invoke("ui")
    assert result.exit_code == 2
    assert "no registry" in result.output and "Traceback" not in result.output
    assert not (stardag_home / "registry.db").exists()


@pytest.mark.usefixtures("registry_made")
def test_ui_on_a_port_in_use_says_so() -> None:
    """A port that is taken is one line naming it, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("ui", "--port", str(port))
    assert result.exit_code == 1
    assert f"cannot serve on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output
