"""The multiplexed-connection framing (pure) and two ``Mux`` ends joined in one event loop:
half-close, flow control (a reader that does not read holds the writer at one window), close,
frames for unknown connections, and remote endpoint parsing."""

from __future__ import annotations

import asyncio

import pytest

from mutagen_actors.actors.forward.endpoints import Endpoint, ForwardingError
from mutagen_actors.actors.forward.mux import Mux, pipe
from mutagen_actors.actors.forward.remote import parse_remote_endpoint
from mutagen_actors.wire import forward_mux as fx
from mutagen_actors.wire.errors import ProtocolError


@pytest.mark.parametrize("op, identifier, body", [
    (fx.DIAL, 2, b"tcp:127.0.0.1:80"),
    (fx.DATA, 0xFFFFFFFF, bytes(range(256)) * 10),
    (fx.EOF, 7, b""),
    (fx.ACK, 3, (65536).to_bytes(4, "big")),
])
def test_frames_round_trip(op, identifier, body):
    decoded = fx.decode(fx.encode(op, identifier, body))
    assert (decoded[0], decoded[1], bytes(decoded[2])) == (op, identifier, body)


@pytest.mark.parametrize("payload, message", [
    (b"\x01\x00\x00", "too short"),
    (b"\x63\x00\x00\x00\x01", "unknown forwarding frame op 99"),
])
def test_bad_frames(payload, message):
    with pytest.raises(ProtocolError, match=message):
        fx.decode(payload)


@pytest.mark.parametrize("text, listening, expected", [
    ("tcp:127.0.0.1:80", False, Endpoint("tcp", "127.0.0.1", 80)),
    ("tcp::8080", True, Endpoint("tcp", "", 8080)),
    ("unix:/run/app.sock", False, Endpoint("unix", path="/run/app.sock")),
    ("unix:run/app.sock", False, "a remote unix socket path must be absolute"),
    ("unix:~/app.sock", True, "a remote unix socket path must be absolute"),
    ("unix:/" + "x" * 110, True, "unix socket path too long"),
    ("tcp:localhost:65536", False, "out of range"),
    ("tcp::80", False, "a destination needs a host"),
])
def test_parse_remote_endpoint(text, listening, expected):
    if isinstance(expected, Endpoint):
        assert parse_remote_endpoint(text, listening=listening) == expected
        return
    with pytest.raises(ForwardingError, match=expected):
        parse_remote_endpoint(text, listening=listening)


class Pair:
    """Two Mux ends whose frames go straight to each other (in order, like one tunnel);
    ``sent`` counts the DATA bytes put on the 'wire'."""

    def __init__(self):
        self.sent = 0
        self.left = Mux(self._to_right, odd=False)
        self.right = Mux(self._to_left, odd=True)

    async def _to_right(self, payload):
        await self._deliver(self.right, payload)

    async def _to_left(self, payload):
        await self._deliver(self.left, payload)

    async def _deliver(self, mux, payload):
        op, identifier, body = fx.decode(payload)
        if op == fx.DATA:
            self.sent += len(body)
        mux.on_stream_frame(op, identifier, body)

    def connection(self):
        identifier = self.left.new_id()
        return self.left.open(identifier), self.right.open(identifier)


def test_bytes_half_close_and_the_other_direction():
    async def main():
        pair = Pair()
        a, b = pair.connection()
        a.write(b"hello " * 100_000)
        await a.drain()
        a.write_eof()
        received = b""
        while chunk := await b.read(1 << 16):
            received += chunk
        b.write(b"answer after EOF")
        await b.drain()
        b.write_eof()
        back = b""
        while chunk := await a.read():
            back += chunk
        return received, back

    received, back = asyncio.run(asyncio.wait_for(main(), 10))
    assert received == b"hello " * 100_000 and back == b"answer after EOF"


def test_a_reader_that_does_not_read_holds_the_writer_at_one_window():
    async def main():
        pair = Pair()
        a, b = pair.connection()
        a.write(b"x" * (8 * fx.WINDOW))
        writer = asyncio.ensure_future(a.drain())
        await asyncio.sleep(0.05)  # the writer runs until it is out of credit
        held = pair.sent
        blocked = not writer.done()
        while pair.sent < 8 * fx.WINDOW or not writer.done():  # reading frees it
            await b.read(1 << 20)
            await asyncio.sleep(0)
        await writer
        return held, blocked

    held, blocked = asyncio.run(asyncio.wait_for(main(), 10))
    assert blocked and held == fx.WINDOW


def test_close_ends_both_sides_and_later_writes_fail():
    async def main():
        pair = Pair()
        a, b = pair.connection()
        a.close()
        await asyncio.sleep(0.01)
        eof = await b.read()
        b.write(b"late")
        with pytest.raises(ConnectionResetError):
            await b.drain()
        return eof, pair.left.streams, pair.right.streams

    eof, left, right = asyncio.run(asyncio.wait_for(main(), 10))
    assert eof == b"" and left == {} and right == {}


def test_frames_for_an_unknown_connection_are_answered_with_close():
    answered = []

    async def main():
        async def send(payload):
            answered.append(fx.decode(payload)[:2])

        mux = Mux(send, odd=True)
        mux.on_stream_frame(fx.DATA, 42, b"stray")
        mux.on_stream_frame(fx.CLOSE, 43, b"")
        await asyncio.sleep(0.01)

    asyncio.run(main())
    assert answered == [(fx.CLOSE, 42)]


def test_pipe_joins_a_mux_stream_and_a_socket_pair():
    async def main():
        pair = Pair()
        a, b = pair.connection()
        server = await asyncio.start_server(_echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        joined = asyncio.ensure_future(pipe(reader, writer, b, b))
        a.write(b"round trip")
        await a.drain()
        a.write_eof()
        back = b""
        while chunk := await a.read():
            back += chunk
        await asyncio.wait_for(joined, 5)
        server.close()
        return back

    assert asyncio.run(asyncio.wait_for(main(), 10)) == b"round trip"


async def _echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
