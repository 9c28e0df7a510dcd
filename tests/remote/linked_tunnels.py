"""A real agent tunnel on a socket pair, for tests that need no SSH: ``stream_pair`` (two asyncio
streams joined by ``socket.socketpair``) and ``linked_agent`` (the daemon-side ``Link`` of a remote
endpoint actor talking through a ``Tunnel`` to an agent-side ``RequestServer`` running
``handler``)."""

from __future__ import annotations

import asyncio
import contextlib
import socket


async def stream_pair():
    """Two connected (reader, writer) pairs with a 4 MiB read limit."""
    left, right = socket.socketpair()
    a = await asyncio.open_connection(sock=left, limit=1 << 22)
    b = await asyncio.open_connection(sock=right, limit=1 << 22)
    return a, b


@contextlib.asynccontextmanager
async def linked_agent(handler, *, compression: bool = False):
    """Yields ``(link, daemon_tunnel, agent_tunnel)``; both tunnels are closed on the way out."""
    from mutagen_actors.agent.remote_endpoint_actor import Link
    from mutagen_actors.wire.tunnel import RequestServer, Tunnel

    (ra, wa), (rb, wb) = await stream_pair()
    link = Link()
    daemon = Tunnel(ra, wa, link.on_data, compression=compression)
    server = RequestServer(handler)
    agent = Tunnel(rb, wb, server.on_data, compression=compression, peer="daemon")
    server.tunnel = agent
    daemon.start()
    agent.start()
    link.attach(type("Agent", (), {"tunnel": daemon})())
    try:
        yield link, daemon, agent
    finally:
        await daemon.close()
        await agent.close()
