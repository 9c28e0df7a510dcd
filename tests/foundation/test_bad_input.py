"""Malformed bytes, wrong message types and oversized frames sent to the daemon's control socket
and to an actor's mailbox are rejected with a logged protocol error; neither process crashes."""

from __future__ import annotations

import asyncio
import struct

import msgspec
import pytest
import zmq.asyncio

from mutagen_actors.wire import codec
from mutagen_actors.wire.errors import RemoteError
from mutagen_actors.wire.messages.actor import GetStatistics, Statistics, Stop
from mutagen_actors.wire.messages.control import Hello, Welcome
from mutagen_actors.wire.sockets import ZMQ_SLACK, DealerClient
from mutagen_actors.wire.stream import CONTROL_MAX_FRAME, StreamClient, pack
from mutagen_actors.wire.version import MAX_FRAME_SIZE, PROTOCOL_VERSION


def _raw(value) -> bytes:
    return msgspec.msgpack.encode(value)


CONTROL_BAD_FRAMES = [
    (b"\xc1\xc1\xc1", "malformed frame"),
    (_raw([PROTOCOL_VERSION, 1, 0, ["NoSuchMessage"]]), "invalid message"),
    (_raw([PROTOCOL_VERSION, 1, 0, ["Hello", 42]]), "Expected `str`"),
    (_raw([PROTOCOL_VERSION + 1, 1, 0, ["Hello", "0.1.0"]]), "protocol version mismatch"),
    (b"", "empty frame"),
]


def test_control_socket_rejects_bad_frames_and_keeps_serving(daemon):
    pid = daemon.start()
    with StreamClient(daemon.socket) as client:
        client.connect(2.0)
        for frame, expected in CONTROL_BAD_FRAMES:
            client.send_raw(pack(frame))
            answer = client.read_reply(5.0).body
            assert (answer.code, expected in answer.message) == ("protocol", True), answer
        # A well-formed message the daemon does not handle gets a clear error reply.
        with pytest.raises(RemoteError) as refused:
            client.request(Stop(), 5.0)
        assert refused.value.code == "unknown-request"
        # The same connection still works.
        assert isinstance(client.request(Hello("0.1.0"), 5.0), Welcome)
        # An oversized frame: the length alone is refused and the connection closed.
        client.send_raw(struct.pack(">I", CONTROL_MAX_FRAME + 1) + b"\x00" * 1024)
        with pytest.raises(ConnectionError):
            client.read_reply(5.0)
    errors = daemon.wait_log(
        lambda e: e["event"] == "protocol error on control socket" and "oversized" in e["error"],
        what="oversized frame logged")
    assert errors
    logged = [e["error"] for e in daemon.log_lines()
              if e["event"] == "protocol error on control socket"]
    for _frame, expected in CONTROL_BAD_FRAMES:
        assert any(expected in text for text in logged), expected
    assert daemon.status()["pid"] == pid


async def _abuse_mailbox(endpoint: str):
    context = zmq.asyncio.Context()
    try:
        client = DealerClient(context, endpoint)
        await client.ping(timeout=5)  # connected
        await client.send_raw([b"\xc1 not msgpack"])
        await client.send_raw([b"two", b"frames"])
        await client.send_raw([_raw([PROTOCOL_VERSION, 9, 0, ["Ping", "not an int"]])])
        await client.send_raw([_raw([PROTOCOL_VERSION, 9, 0, ["NoSuchMessage"]])])
        await client.send_raw([b"\x00" * (MAX_FRAME_SIZE + 1)])
        with pytest.raises(RemoteError) as refused:
            await client.request(Welcome("0.1.0", 1), timeout=5)
        assert refused.value.code == "unknown-request"
        statistics = await client.request(GetStatistics(), timeout=5)
        assert isinstance(statistics, Statistics)
        client.close()
        # Grossly oversized: libzmq drops this peer's connection; the mailbox carries on.
        huge = DealerClient(context, endpoint)
        await huge.ping(timeout=5)
        await huge.send_raw([b"\x00" * (MAX_FRAME_SIZE + ZMQ_SLACK + 1)])
        huge.close()
        fresh = DealerClient(context, endpoint)
        await fresh.ping(timeout=5)
        fresh.close()
        return statistics
    finally:
        context.destroy(linger=0)


def test_actor_mailbox_rejects_bad_frames_and_keeps_serving(daemon):
    daemon.start()
    session = daemon.create_session(1)
    actor = session["actors"][0]
    statistics = asyncio.run(_abuse_mailbox(actor["mailbox"]))
    assert statistics.pid == actor["pid"]

    def actor_errors():
        return [e["error"] for e in daemon.log_lines()
                if e["event"] == "protocol error on mailbox" and e.get("actor") == "actor-1"]

    errors = daemon.wait_log(lambda e: e["event"] == "protocol error on mailbox"
                             and "oversized frame" in e.get("error", ""), what="oversize logged")
    assert errors
    logged = actor_errors()
    for expected in ("malformed frame", "expected 1 frame per message, got 2",
                     "Expected `int`", "invalid message", "oversized frame"):
        assert any(expected in text for text in logged), (expected, logged)
    after = daemon.session(session["id"])["actors"][0]
    assert (after["pid"], after["restarts"], after["state"]) == (actor["pid"], 0, "running")
