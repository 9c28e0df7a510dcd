"""The sync tunnel's SSH connection takes the forwarder's short send paths
(``actors.forward.remote.lean_send_paths``), and a large message still crosses intact."""

from __future__ import annotations

import asyncio
import os

from mutagen_actors.agent.remote_endpoint_actor import open_link, url_from_args
from mutagen_actors.wire.messages import agent as am


def test_the_sync_tunnel_sends_through_the_short_path(sshd, cache_directory):  # noqa: F811
    payload = os.urandom(3 << 20)

    async def scenario():
        link = await open_link(url_from_args({"protocol": "ssh", "host": "testhost"}),
                               cache_directory=cache_directory, progress=lambda text: None,
                               ssh_directory=sshd.client.directory)
        try:
            lean = link.agent.transport.connection.send_packet.lean
            assert lean is not None, "the asyncssh installed lacks the state the path needs"
            before = lean.packets
            reply = await link.request(am.AgentEcho(payload), timeout=60)
            return reply, lean.packets - before
        finally:
            await link.close("test done")

    reply, packets = asyncio.run(scenario())
    assert reply.payload == payload
    assert packets >= (3 << 20) // (64 << 10)  # the message went the short way, in packets
