"""Serving the dashboard: the listening socket `stardag ui` hands to uvicorn."""

from __future__ import annotations

import asyncio
import socket

from stardag.ui import bind


def test_accepted_connections_send_without_waiting_for_acks() -> None:
    """A connection accepted on `bind`'s socket has Nagle's algorithm off (TCP_NODELAY).

    With it on, each answer after a kept-alive connection's first waited 40 ms for the
    client's delayed ACK of its headers before its body went out.
    """
    listening = bind("127.0.0.1", 0)
    port = listening.getsockname()[1]
    seen: list[int] = []

    class Accepted(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one() -> None:
        # How uvicorn serves the sockets it is given: an asyncio server over each.
        server = await asyncio.get_running_loop().create_server(Accepted, sock=listening)
        async with server, asyncio.timeout(60):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            while not seen:
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(accept_one())
    assert seen and seen[0] != 0
