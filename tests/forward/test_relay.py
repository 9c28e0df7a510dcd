"""The relay through real sockets: echo and HTTP servers reached through tcp->tcp, unix->tcp and
tcp->unix forwards, concurrency, 1 GiB, half-close, a destination that is down then up."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
import socket
import time

import pytest

from .servers import (EchoServer, HashSink, Sender, connect, expected_digest, generated,
                      http_server, recv_all, wait_until)

GIB = 1 << 30


def _where(kind: str, directory: str, name: str) -> str:
    return f"unix:{os.path.join(directory, name)}" if kind == "unix" else "tcp:127.0.0.1:0"


KINDS = [("tcp", "tcp"), ("unix", "tcp"), ("tcp", "unix")]


@pytest.mark.parametrize("source_kind,destination_kind", KINDS)
def test_echo_round_trip_and_statistics(forwards, short_dir, source_kind, destination_kind):
    server = EchoServer(_where(destination_kind, short_dir, "echo.sock"))
    try:
        relay = forwards.start(_where(source_kind, short_dir, "src.sock"), server.endpoint)
        payload = os.urandom(300_000)
        with connect(relay.listener.describe()) as client:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            assert recv_all(client) == payload
        stats = wait_until(lambda: (s := forwards.statistics(relay)).open_connections == 0
                           and s, 5, what="the connection to be closed")
        assert (stats.total_connections, stats.outbound_bytes, stats.inbound_bytes,
                stats.errors) == (1, len(payload), len(payload), 0)
    finally:
        server.close()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.unix_path)


@pytest.mark.parametrize("source_kind,destination_kind", KINDS)
def test_http_requests_through_the_forward(forwards, short_dir, source_kind, destination_kind):
    with http_server(_where(destination_kind, short_dir, "http.sock")) as endpoint:
        relay = forwards.start(_where(source_kind, short_dir, "src.sock"), endpoint)
        address = relay.listener.describe()
        if address.startswith("unix:"):
            connection = _UnixHTTPConnection(address[5:])
        else:
            connection = http.client.HTTPConnection("127.0.0.1", int(address.rsplit(":")[-1]),
                                                    timeout=10)
        try:
            for path in ("/a", "/b/c", "/d"):  # keep-alive: three requests, one connection
                connection.request("GET", path)
                response = connection.getresponse()
                assert response.status == 200
                assert response.read() == f"hello from {path}".encode() * 1000
        finally:
            connection.close()
        assert forwards.statistics(relay).total_connections == 1


@pytest.mark.parametrize("use_splice", [True, False], ids=["splice", "copy-loop"])
def test_100_concurrent_connections_each_verified_by_hash(forwards, use_splice):
    server = EchoServer("tcp:127.0.0.1:0")
    try:
        relay = forwards.start("tcp:127.0.0.1:0", server.endpoint, use_splice=use_splice)
        port = int(relay.listener.describe().rsplit(":")[-1])

        async def one(index: int) -> tuple[str, str]:
            payload = os.urandom(64 * 1024 + index * 997)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)

            async def send():
                for offset in range(0, len(payload), 16384):
                    writer.write(payload[offset:offset + 16384])
                    await writer.drain()
                writer.write_eof()

            sending = asyncio.ensure_future(send())
            received = hashlib.sha256()
            while data := await reader.read(65536):
                received.update(data)
            await sending
            writer.close()
            return hashlib.sha256(payload).hexdigest(), received.hexdigest()

        async def main():
            return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(100))), 60)

        results = asyncio.run(main())
        assert all(sent == got for sent, got in results)
        stats = wait_until(lambda: (s := forwards.statistics(relay)).open_connections == 0
                           and s, 10, what="every connection to be closed")
        assert stats.total_connections == 100 and stats.errors == 0
        assert server.accepted == 100
    finally:
        server.close()


def test_one_gib_outbound_verified_by_hash(forwards):
    sink = HashSink("tcp:127.0.0.1:0")
    try:
        relay = forwards.start("tcp:127.0.0.1:0", sink.endpoint)
        started = time.perf_counter()
        with connect(relay.listener.describe(), timeout=60) as client:
            for chunk in generated(GIB):
                client.sendall(chunk)
            client.shutdown(socket.SHUT_WR)
            answer = recv_all(client).decode()
        elapsed = time.perf_counter() - started
        assert answer == f"{GIB} {expected_digest(GIB)}\n"
        assert forwards.statistics(relay).outbound_bytes == GIB
        print(f"1 GiB outbound through the relay (with sha256 at the sink): {elapsed:.2f} s")
    finally:
        sink.close()


def test_one_gib_inbound_verified_by_hash(forwards):
    sender = Sender("tcp:127.0.0.1:0")
    sender.size = GIB
    try:
        relay = forwards.start("tcp:127.0.0.1:0", sender.endpoint)
        digest, total = hashlib.sha256(), 0
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        with connect(relay.listener.describe(), timeout=60) as client:
            while n := client.recv_into(buffer):
                digest.update(view[:n])
                total += n
        assert (total, digest.hexdigest()) == (GIB, expected_digest(GIB))
        assert forwards.statistics(relay).inbound_bytes == GIB
    finally:
        sender.close()


def test_half_close_from_the_source_keeps_the_reply_flowing(forwards):
    """The client half-closes after its request; the destination sees end of stream and its
    reply still arrives in full."""
    sink = HashSink("tcp:127.0.0.1:0")
    try:
        relay = forwards.start("tcp:127.0.0.1:0", sink.endpoint)
        payload = os.urandom(5 * 1024 * 1024 + 3)
        with connect(relay.listener.describe()) as client:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            answer = recv_all(client).decode()
        assert answer == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n"
    finally:
        sink.close()


def test_half_close_from_the_destination_keeps_the_request_flowing(forwards):
    """The destination sends its data and half-closes; the client sees end of stream, then
    still sends, and the destination receives it."""
    sender = Sender("tcp:127.0.0.1:0")
    sender.size = 2 * 1024 * 1024
    try:
        relay = forwards.start("tcp:127.0.0.1:0", sender.endpoint)
        with connect(relay.listener.describe()) as client:
            received = recv_all(client)  # ends at the destination's half-close
            assert hashlib.sha256(received).hexdigest() == expected_digest(sender.size)
            client.sendall(b"still talking after your EOF")
            client.shutdown(socket.SHUT_WR)
            wait_until(lambda: getattr(sender, "after_eof", b"") ==
                       b"still talking after your EOF", 5, what="the late request to arrive")
            assert recv_all(client) == b""
    finally:
        sender.close()


def test_destination_down_is_an_error_then_up_again_works(forwards):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on this port now
    relay = forwards.start("tcp:127.0.0.1:0", f"tcp:127.0.0.1:{port}")

    for attempt in (1, 2):
        with connect(relay.listener.describe()) as client:
            started = time.monotonic()
            if attempt == 2:
                client.sendall(b"anyone there?")  # unread by the relay: closing it resets
            try:
                assert recv_all(client) == b""  # closed by the relay, promptly
            except ConnectionResetError:
                assert attempt == 2
            assert time.monotonic() - started < 1.0
        stats = wait_until(lambda: (s := forwards.statistics(relay)).errors == attempt and s, 5,
                           what="the refused dial to be counted")
        assert "refused" in stats.last_error and f"127.0.0.1:{port}" in stats.last_error
        assert stats.open_connections == 0

    server = EchoServer(f"tcp:127.0.0.1:{port}")
    try:
        with connect(relay.listener.describe()) as client:
            client.sendall(b"now?")
            client.shutdown(socket.SHUT_WR)
            assert recv_all(client) == b"now?"
        assert forwards.statistics(relay).errors == 2
    finally:
        server.close()


def test_any_stream_opener_plugs_in_asyncio_streams_on_both_sides(forwards):
    """The relay is written against (reader, writer) pairs: asyncio streams on the listening
    side (a callback-fed ``QueueListener``, the shape of an SSH server-side forward) and on the
    dialing side (the shape of an SSH channel) take the generic copy path."""
    from mutagen_actors.actors.forward.relay import Relay
    from mutagen_actors.actors.forward.streams import QueueListener

    sink = HashSink("tcp:127.0.0.1:0")
    sink_port = int(sink.endpoint.rsplit(":")[-1])

    async def start():
        listener = QueueListener("asyncio-streams")
        server = await asyncio.start_server(listener.deliver, "127.0.0.1", 0)
        listener._on_close = server.close

        async def dial():
            return await asyncio.open_connection("127.0.0.1", sink_port)

        relay = Relay(listener, dial)
        relay.start()
        return relay, server.sockets[0].getsockname()[1]

    try:
        relay, port = forwards.run(start())
        forwards.relays.append(relay)
        payload = os.urandom(3 * 1024 * 1024 + 11)
        with connect(f"tcp:127.0.0.1:{port}") as client:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)  # half-close through asyncio's write_eof
            answer = recv_all(client).decode()
        assert answer == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n"
        stats = wait_until(lambda: (s := forwards.statistics(relay)).open_connections == 0
                           and s, 5, what="the connection to be closed")
        assert (stats.total_connections, stats.outbound_bytes, stats.inbound_bytes,
                stats.errors) == (1, len(payload), len(answer), 0)
    finally:
        sink.close()


def test_closing_the_relay_drops_its_connections_and_stops_listening(forwards):
    server = EchoServer("tcp:127.0.0.1:0")
    try:
        relay = forwards.start("tcp:127.0.0.1:0", server.endpoint)
        address = relay.listener.describe()
        with connect(address) as client:
            client.sendall(b"ping")
            assert client.recv(4) == b"ping"
            forwards.run(relay.close())
            try:
                assert recv_all(client) == b""
            except ConnectionResetError:
                pass
        assert forwards.statistics(relay).open_connections == 0
        with pytest.raises(ConnectionRefusedError):
            connect(address)
    finally:
        server.close()
