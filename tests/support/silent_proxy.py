"""A TCP proxy that goes silent mid-stream: a remote that stops answering, for fault tests."""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Any


class SilentProxy:
    """A TCP proxy to a server that, once silenced, swallows requests and never answers."""

    def __init__(self, upstream: tuple[str, int], silence_after: int) -> None:
        self.upstream = upstream
        self.silence_after = silence_after
        self.forwarded = 0
        self.silenced = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            threading.Thread(target=self._pump, args=(client,), daemon=True).start()

    def _pump(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as server:
            while not self._stop.is_set():
                readable = _readable(client, server)
                for sock in readable:
                    data = sock.recv(1 << 16)
                    if not data:
                        return
                    if sock is client:
                        self.forwarded += len(data)
                        if self.forwarded > self.silence_after:
                            self.silenced.set()
                    if self.silenced.is_set():
                        continue  # swallow: the remote has stopped answering
                    (server if sock is client else client).sendall(data)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


def through(proxy: SilentProxy, s3_options: dict[str, Any]) -> dict[str, Any]:
    """S3 storage options that reach the server through `proxy`, with short timeouts."""
    host, port = proxy.address
    return {
        **s3_options,
        "endpoint_url": f"http://{host}:{port}",
        "config_kwargs": {
            "connect_timeout": 1,
            "read_timeout": 1,
            "retries": {"max_attempts": 1},
        },
    }


def _readable(*socks: socket.socket) -> list[socket.socket]:
    """The sockets with data within 0.1 s (epoll: select() fails past descriptor 1024)."""
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        return [key.fileobj for key, _ in selector.select(0.1)]  # the sockets registered above
