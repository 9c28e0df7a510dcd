"""``wire.tunnel.FdReader``, the remote agent's stdin reader, on real pipes and sockets: what
is written comes out in order and whole, a read waits for data, end of stream is ``b""``, the
pipe is grown, other tasks get turns while the pipe stays full, and a ``Tunnel`` reads its
frames through it."""

from __future__ import annotations

import asyncio
import os
import socket
import threading

import pytest

from mutagen_actors.wire import tunnel as t


def _run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


@pytest.mark.parametrize("kind", ["pipe", "socket"])
@pytest.mark.parametrize("total, piece", [(1, 1), (100_000, 7), (3 << 20, 32 * 1024),
                                          (3 << 20, 1 << 20)])
def test_everything_written_comes_out_in_order_then_end_of_stream(kind, total, piece):
    if kind == "pipe":
        read_fd, write_fd = os.pipe()
    else:
        left, right = socket.socketpair()
        read_fd, write_fd = left.detach(), right.detach()
    data = os.urandom(total)

    def write():
        with os.fdopen(write_fd, "wb", buffering=0) as out:
            for at in range(0, total, piece):
                out.write(data[at:at + piece])

    async def read_all():
        reader = t.FdReader(read_fd)
        got = []
        writer = threading.Thread(target=write)
        writer.start()
        try:
            while True:
                chunk = await reader.read(1 << 20)
                if not chunk:
                    return b"".join(got), reader
                got.append(chunk)
        finally:
            writer.join(10)

    try:
        received, reader = _run(read_all())
    finally:
        os.close(read_fd)
    assert received == data
    assert (reader.pipe_size >= t.PIPE_SIZE) if kind == "pipe" else reader.pipe_size == 0


def test_a_read_waits_for_data_and_never_returns_more_than_asked():
    read_fd, write_fd = os.pipe()

    async def scenario():
        reader = t.FdReader(read_fd)
        pending = asyncio.ensure_future(reader.read(4))
        await asyncio.sleep(0.05)
        assert not pending.done()  # nothing written yet
        os.write(write_fd, b"abcdefgh")
        first = await pending
        second = await reader.read(100)
        os.close(write_fd)
        return first, second, await reader.read(100)

    try:
        assert _run(scenario()) == (b"abcd", b"efgh", b"")
    finally:
        os.close(read_fd)


def test_other_tasks_get_turns_while_the_pipe_stays_full():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"x" * 60_000)

    async def scenario():
        reader = t.FdReader(read_fd)
        reader.YIELD_AFTER = 1000
        turns = []

        async def other():
            while True:
                turns.append(len(turns))
                await asyncio.sleep(0)

        task = asyncio.ensure_future(other())
        await asyncio.sleep(0)
        before = len(turns)
        for _ in range(50):  # every read finds data: none of them waits
            assert len(await reader.read(1000)) == 1000
        task.cancel()
        return len(turns) - before

    try:
        assert _run(scenario()) >= 40  # a turn after every 1000 bytes read
    finally:
        os.close(read_fd)
        os.close(write_fd)


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
        link = t.Tunnel(t.FdReader(read_fd), _Nowhere(),
                        lambda route, payload: got.append((route, bytes(payload))),
                        compression=compression, interval=30.0)
        writer = threading.Thread(target=write)
        link.start()
        writer.start()
        closed = await link.wait_closed()
        writer.join(10)
        return got, str(closed)

    try:
        got, closed = _run(scenario())
    finally:
        os.close(read_fd)
    assert got == [(b"r%d" % index, payload) for index, payload in enumerate(payloads)]
    assert "closed the stream" in closed
