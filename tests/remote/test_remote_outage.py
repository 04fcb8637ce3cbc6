"""A remote that is down costs the first process its retries, and the next ones nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import TESTS

UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
BUILD = "import remote_tasks, stardag as sd; print(sd.build(remote_tasks.numbers(limit=int({n}))))"


@pytest.fixture
def dead_endpoint() -> Iterator[tuple[str, list[int]]]:
    """An S3 endpoint on 127.0.0.1 that answers every request 503 Service Unavailable."""
    server = socket.create_server(("127.0.0.1", 0))
    count = [0]

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            count[0] += 1
            with connection:
                connection.recv(1 << 16)
                connection.sendall(UNAVAILABLE)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", count
    server.close()


def _build(n: int, endpoint: str) -> subprocess.CompletedProcess[str]:
    options = {
        "endpoint_url": endpoint,
        "key": "k",
        "secret": "s",
        "config_kwargs": {"retries": {"max_attempts": 1}},
    }
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS),
        "STARDAG_REMOTE": "s3://bucket/cache",
        "FSSPEC_S3": json.dumps(options),
    }
    code = BUILD.format(n=n)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_an_outage_is_remembered_across_processes_and_reported_once(
    dead_endpoint: tuple[str, list[int]], stardag_home: Path
) -> None:
    """The first build tries the remote; the next never connects, and says why once."""
    endpoint, connections = dead_endpoint
    first = _build(3000, endpoint)
    assert first.returncode == 0, first.stderr
    assert connections[0] > 0 and "did not answer" in first.stderr
    tried = connections[0]
    later = _build(3001, endpoint)
    assert later.returncode == 0, later.stderr
    assert later.stderr.count("did not answer") == 1 and "skipping it until" in later.stderr
    assert connections[0] == tried  # no more connections: the outage was remembered
