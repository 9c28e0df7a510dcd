"""The tunnel between two real asyncio streams (a socketpair), with the ZeroMQ ends attached:
a DealerClient talks through a TunnelBridge to a RequestServer as it would to a mailbox."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time

import pytest
import zmq
import zmq.asyncio

from mutagen_actors.wire.errors import RemoteError
from mutagen_actors.wire.handling import NotHandled
from mutagen_actors.wire.messages.agent import AgentEcho, AgentEchoed, AgentInfo
from mutagen_actors.wire.messages.base import Ok
from mutagen_actors.wire.sockets import DealerClient
from mutagen_actors.wire.tunnel import RequestServer, Tunnel, TunnelBridge, encode_frame, PING

from .linked_tunnels import stream_pair


async def _echo_handler(message):
    if isinstance(message, AgentEcho):
        return AgentEchoed(message.payload)
    if isinstance(message, AgentInfo):
        return None
    raise NotHandled


class _Ends:
    """Daemon end (bridge + tunnel) and agent end (request server + tunnel) over a socketpair."""

    async def start(self, *, compression=True, interval=1.0, misses=3, notify=None):
        (ra, wa), (rb, wb) = await stream_pair()
        self.directory = tempfile.mkdtemp(prefix="tun-", dir="/tmp")
        self.context = zmq.asyncio.Context()
        self.bridge = TunnelBridge(self.context, f"ipc://{self.directory}/agent.ipc", notify=notify)
        self.bridge.bind()
        self.daemon = Tunnel(ra, wa, self.bridge.deliver, compression=compression,
                             interval=interval, misses=misses)
        self.server = RequestServer(_echo_handler)
        self.agent = Tunnel(rb, wb, self.server.on_data, compression=compression,
                            interval=interval, misses=misses, peer="daemon")
        self.server.tunnel = self.agent
        self.daemon.start()
        self.agent.start()
        self.bridge.attach(self.daemon)
        self.client = DealerClient(self.context, self.bridge.endpoint)
        return self

    async def stop(self):
        self.client.close()
        await self.daemon.close()
        await self.agent.close()
        self.bridge.close()
        self.context.destroy(linger=0)
        os.rmdir(self.directory)


def test_request_reply_through_the_tunnel_with_a_big_compressible_payload():
    async def main():
        ends = await _Ends().start()
        try:
            payload = (b"line of source code that repeats\n" * 250_000)[:8_000_000]
            reply = await ends.client.request(AgentEcho(payload), timeout=20)
            assert reply == AgentEchoed(payload)
            assert await ends.client.request(AgentInfo(), timeout=5) == Ok()
            assert await ends.client.ping(timeout=5) > 0
            with pytest.raises(RemoteError, match="is not handled here"):
                await ends.client.request(Ok(), timeout=5)
            # the compressible payload crossed compressed, both ways
            assert ends.daemon.bytes_sent < ends.daemon.payload_bytes_sent / 5
            assert ends.agent.bytes_sent < len(payload) / 5
        finally:
            await ends.stop()

    asyncio.run(main())


def test_incompressible_payload_and_no_compression():
    async def main():
        ends = await _Ends().start(compression=False)
        try:
            payload = os.urandom(1 << 20)
            assert await ends.client.request(AgentEcho(payload), timeout=10) == AgentEchoed(payload)
            assert ends.daemon.bytes_sent > len(payload)
        finally:
            await ends.stop()

    asyncio.run(main())


def test_a_message_from_the_agent_reaches_the_notify_socket():
    async def main():
        directory = tempfile.mkdtemp(prefix="tun-", dir="/tmp")
        context = zmq.asyncio.Context()
        sink = context.socket(zmq.ROUTER)
        sink.bind(f"ipc://{directory}/notify.ipc")
        ends = await _Ends().start(notify=f"ipc://{directory}/notify.ipc")
        try:
            await ends.server.send(AgentEchoed(b"changed"))
            parts = await asyncio.wait_for(sink.recv_multipart(), 5)
            from mutagen_actors.wire import codec
            assert codec.decode(parts[-1]).body == AgentEchoed(b"changed")
        finally:
            await ends.stop()
            sink.close(linger=0)
            context.destroy(linger=0)
            os.unlink(f"{directory}/notify.ipc")
            os.rmdir(directory)

    asyncio.run(main())


def test_heartbeat_notices_a_silent_peer():
    """The other end neither reads nor answers: the tunnel closes within interval * misses."""
    async def main():
        (reader, writer), (_silent_reader, silent_writer) = await stream_pair()
        tunnel = Tunnel(reader, writer, lambda r, p: None, interval=0.5, misses=3)
        started = time.monotonic()
        tunnel.start()
        closed = await asyncio.wait_for(tunnel.wait_closed(), 10)
        elapsed = time.monotonic() - started
        silent_writer.close()
        return closed, elapsed

    closed, elapsed = asyncio.run(main())
    assert "no sign of life from the remote agent" in str(closed)
    assert 1.4 < elapsed < 5.0


def test_end_of_stream_and_close_reasons_are_reported():
    async def main():
        ends = await _Ends().start()
        await ends.agent.close("agent shutting down")
        closed = await asyncio.wait_for(ends.daemon.wait_closed(), 5)
        await ends.stop()
        return closed

    assert "closed the tunnel: agent shutting down" in str(asyncio.run(main()))


def test_garbage_in_the_stream_closes_with_a_protocol_error():
    async def main():
        (reader, writer), (_r, other) = await stream_pair()
        tunnel = Tunnel(reader, writer, lambda r, p: None)
        tunnel.start()
        other.write(encode_frame(PING, b"12345678") + b"\x7fgarbage!")
        await other.drain()
        closed = await asyncio.wait_for(tunnel.wait_closed(), 5)
        other.close()
        return closed

    assert "protocol error from the remote agent: unknown tunnel frame type 0x7f" in str(asyncio.run(main()))


def test_both_ends_writing_large_frames_with_frequent_heartbeats_do_not_wait_on_each_other():
    """Concurrent large requests and replies cross while pings fly every 50 ms: a read loop that
    waited for its own write lock to answer a ping would deadlock both ends."""
    async def main():
        # pings every 50 ms, but death only after 10 s: a loaded machine must not end the link
        ends = await _Ends().start(compression=False, interval=0.05, misses=200)
        try:
            payloads = [os.urandom(6 << 20) for _ in range(4)]
            replies = await asyncio.wait_for(asyncio.gather(*(
                ends.client.request(AgentEcho(p), timeout=30) for p in payloads)), 40)
            assert replies == [AgentEchoed(p) for p in payloads]
            assert not ends.daemon.is_closed and not ends.agent.is_closed
        finally:
            await ends.stop()

    asyncio.run(main())


@pytest.mark.parametrize("agent_says, words", [
    ("garbage", "cannot read"),  # a reply the daemon cannot decode
    ("unreadable-request", "could not read a request"),  # the agent's protocol error, no id
])
def test_an_unreadable_exchange_fails_the_waiting_request_at_once(agent_says, words):
    """A daemon-side ``Link`` whose agent runs other code (its replies do not decode here, or
    it cannot read the requests) fails the request in flight with the reason, not after its
    deadline."""
    from mutagen_actors.agent.remote_endpoint_actor import Link
    from mutagen_actors.wire import codec
    from mutagen_actors.wire.messages.base import ErrorReply
    from mutagen_actors.wire.tunnel import TunnelClosed

    async def main():
        (ra, wa), (rb, wb) = await stream_pair()
        link = Link()
        daemon = Tunnel(ra, wa, link.on_data)

        async def answer(route, payload):
            if agent_says == "garbage":
                await agent.send(route, b"\xc1 not msgpack")
            else:  # what RequestServer answers to a frame it cannot decode
                await agent.send(route, codec.encode(ErrorReply("protocol", "invalid message"),
                                                     reply_to=0))

        agent = Tunnel(rb, wb, answer, peer="daemon")
        daemon.start()
        agent.start()
        link.attach(type("Agent", (), {"tunnel": daemon})())
        started = time.monotonic()
        try:
            with pytest.raises(TunnelClosed) as caught:
                await link.request(AgentInfo(), timeout=30)
        finally:
            await daemon.close()
            await agent.close()
        return time.monotonic() - started, str(caught.value)

    seconds, reason = asyncio.run(main())
    assert seconds < 5 and words in reason, (seconds, reason)
