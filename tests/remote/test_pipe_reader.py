"""``wire.tunnel.PipeReader``, the remote agent's stdin reader, on real pipes and sockets: what
is written comes out in order and whole, a read waits for data and never returns more than
asked, end of stream is ``b""``, the transport pauses while too much is unread and resumes,
the pipe can be grown, and a ``Tunnel`` reads its frames through it."""

from __future__ import annotations

import asyncio
import os
import socket
import threading

import pytest

from mutagen_actors.wire import tunnel as t


def _run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


async def _connect(read_fd: int) -> t.PipeReader:
    reader = t.PipeReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: reader, os.fdopen(read_fd, "rb", buffering=0))
    return reader


def _ends(kind: str) -> tuple[int, int]:
    if kind == "pipe":
        return os.pipe()
    left, right = socket.socketpair()
    return left.detach(), right.detach()


@pytest.mark.parametrize("kind", ["pipe", "socket"])
@pytest.mark.parametrize("total, piece, ask", [(1, 1, 1 << 20), (100_000, 7, 1000),
                                               (3 << 20, 32 * 1024, 1 << 20),
                                               (3 << 20, 1 << 20, 4096)])
def test_everything_written_comes_out_in_order_then_end_of_stream(kind, total, piece, ask):
    read_fd, write_fd = _ends(kind)
    data = os.urandom(total)

    def write():
        with os.fdopen(write_fd, "wb", buffering=0) as out:
            for at in range(0, total, piece):
                out.write(data[at:at + piece])

    async def read_all():
        reader = await _connect(read_fd)
        got = []
        writer = threading.Thread(target=write)
        writer.start()
        try:
            while True:
                chunk = await reader.read(ask)
                assert len(chunk) <= ask
                if not chunk:
                    return b"".join(got)
                got.append(chunk)
        finally:
            writer.join(10)

    assert _run(read_all()) == data


def test_a_read_waits_for_data_and_never_returns_more_than_asked():
    read_fd, write_fd = os.pipe()

    async def scenario():
        reader = await _connect(read_fd)
        pending = asyncio.ensure_future(reader.read(4))
        await asyncio.sleep(0.05)
        assert not pending.done()  # nothing written yet
        os.write(write_fd, b"abcdefgh")
        first = await pending
        second = await reader.read(100)
        os.close(write_fd)
        return first, second, await reader.read(100), await reader.read(100)

    assert _run(scenario()) == (b"abcd", b"efgh", b"", b"")


def test_the_transport_pauses_while_too_much_is_unread_and_resumes():
    read_fd, write_fd = os.pipe()
    total = 3 * t.PipeReader.LIMIT

    def write():
        with os.fdopen(write_fd, "wb", buffering=0) as out:
            for _ in range(0, total, 64 * 1024):
                out.write(b"z" * (64 * 1024))

    async def scenario():
        reader = await _connect(read_fd)
        writer = threading.Thread(target=write)
        writer.start()
        try:
            async def paused():
                while not reader._paused:
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(paused(), 10)  # nobody reads: reading stops
            held = reader._held
            await asyncio.sleep(0.1)
            assert reader._held == held  # nothing more was read meanwhile
            received = 0
            while True:
                chunk = await reader.read(1 << 20)
                if not chunk:
                    return held, received
                received += len(chunk)
        finally:
            writer.join(10)

    held, received = _run(scenario())
    assert t.PipeReader.LIMIT < held <= t.PipeReader.LIMIT + t.PIPE_SIZE
    assert received == total


def test_grow_pipe_grows_a_pipe_and_leaves_a_socket_alone():
    read_fd, write_fd = os.pipe()
    left, right = socket.socketpair()
    try:
        assert t.grow_pipe(read_fd) >= t.PIPE_SIZE
        assert t.grow_pipe(left.fileno()) == 0
    finally:
        for fd in (read_fd, write_fd):
            os.close(fd)
        left.close()
        right.close()


@pytest.mark.parametrize("compression", [False, True])
def test_a_tunnel_reads_its_frames_through_it(compression):
    read_fd, write_fd = os.pipe()
    payloads = [os.urandom(size) for size in (1, 300, 70_000, 1 << 20, 5)]
    stream = b"".join(t.encode_frame(t.DATA, t.data_body(b"r%d" % index, payload),
                                     compress=compression)
                      for index, payload in enumerate(payloads))

    def write():
        with os.fdopen(write_fd, "wb", buffering=0) as out:
            for at in range(0, len(stream), 32 * 1024):
                out.write(stream[at:at + 32 * 1024])

    class _Nowhere:
        def write(self, data):
            pass

        async def drain(self):
            pass

        def close(self):
            pass

    async def scenario():
        got = []
        link = t.Tunnel(await _connect(read_fd), _Nowhere(),
                        lambda route, payload: got.append((route, bytes(payload))),
                        compression=compression, interval=30.0)
        writer = threading.Thread(target=write)
        link.start()
        writer.start()
        closed = await link.wait_closed()
        writer.join(10)
        return got, str(closed)

    got, closed = _run(scenario())
    assert got == [(b"r%d" % index, payload) for index, payload in enumerate(payloads)]
    assert "closed the stream" in closed
