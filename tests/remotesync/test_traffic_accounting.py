"""Per-message-type traffic accounting of the agent tunnel (benchmarks' ``MUTAGEN_ACTORS_
TRAFFIC_LOG``): the type is read from a frame's first bytes, and every DATA frame either way is
recorded with its payload and on-stream sizes."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from mutagen_actors.wire import codec
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages.agent import AgentEcho, AgentEchoed
from mutagen_actors.wire.messages.base import ErrorReply, Ping
from mutagen_actors.wire.tunnel import TRAFFIC_LOG_ENV, RequestServer, Tunnel, message_type


@pytest.mark.parametrize("frame, expected", [
    (codec.encode(m.Scan(True, 3, "abc"), id=7), "Scan"),
    (codec.encode(m.EndpointChanged("beta")), "EndpointChanged"),
    (codec.encode(Ping(1), id=2**40, reply_to=2**33), "Ping"),
    (codec.encode(m.StageAck(1, []), reply_to=300), "StageAck"),
    (codec.encode(ErrorReply("stale", "x" * 70_000), reply_to=1), "ErrorReply"),
    (b"", "?"),
    (b"\x94\x01", "?"),
    (b"not msgpack at all", "?"),
])
def test_message_type(frame, expected):
    assert message_type(frame) == expected
    assert message_type(memoryview(frame)) == expected


def test_every_data_frame_is_recorded_both_ways(tmp_path, monkeypatch):
    log = tmp_path / "traffic.jsonl"
    monkeypatch.setenv(TRAFFIC_LOG_ENV, str(log))

    async def handler(message):
        return AgentEchoed(message.payload)

    async def main():
        left, right = socket.socketpair()
        ra, wa = await asyncio.open_connection(sock=left)
        rb, wb = await asyncio.open_connection(sock=right)
        replies: asyncio.Queue = asyncio.Queue()
        daemon = Tunnel(ra, wa, lambda route, payload: replies.put_nowait(bytes(payload)),
                        compression=True)
        server = RequestServer(handler)
        agent = Tunnel(rb, wb, server.on_data, compression=True, peer="daemon")
        server.tunnel = agent
        daemon.start()
        agent.start()
        try:
            payload = b"compressible " * 1000
            await daemon.send(b"r", codec.encode(AgentEcho(payload), id=1))
            reply = codec.decode(await asyncio.wait_for(replies.get(), 10))
            assert reply.body == AgentEchoed(payload)
        finally:
            await daemon.close()
            await agent.close()

    asyncio.run(main())
    records = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = sorted((direction, kind) for _, direction, kind, _, _ in records)
    # both tunnels log to the same file here: each frame once as sent, once as received
    assert kinds == [("received", "AgentEcho"), ("received", "AgentEchoed"),
                     ("sent", "AgentEcho"), ("sent", "AgentEchoed")]
    for _, _, _, payload_bytes, stream_bytes in records:
        assert payload_bytes > 13_000 and 0 < stream_bytes < payload_bytes / 5  # lz4 applied
