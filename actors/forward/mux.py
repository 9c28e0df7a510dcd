"""Connections multiplexed over one agent tunnel (``wire.forward_mux`` frames), both ends.

``Mux(send)`` keeps the connections of one tunnel. ``send(payload)`` is an async callable that
writes one frame to the tunnel. Each connection is a ``MuxStream`` with the relay's
``(reader, writer)`` shape (``stream.reader``/``stream.writer`` are the stream itself):

- ``read(n)`` returns received bytes, ``b""`` after the peer's EOF or CLOSE; reading
  acknowledges the bytes (ACK), which gives the peer credit to send more (``WINDOW``);
- ``write`` queues, ``drain`` sends DATA frames of at most ``CHUNK`` bytes, waiting for credit;
  it raises ``ConnectionResetError`` once the connection is closed; ``write_eof`` sends EOF
  (after ``drain``); ``close`` sends CLOSE (once) and forgets the connection.

``Mux.on_stream_frame(op, id, body)`` feeds DATA/EOF/CLOSE/ACK frames (other ops are the
caller's); a frame for an unknown id is answered by CLOSE (except CLOSE itself).
``Mux.lost(reason)`` ends every connection (the tunnel is gone). ``pipe(a, b)`` copies both
ways between two ``(reader, writer)`` pairs with half-close, then closes both.
"""

from __future__ import annotations

import asyncio
import collections
import itertools

from mutagen_actors.wire import forward_mux as fx


class MuxStream:
    def __init__(self, mux: "Mux", identifier: int):
        self.mux = mux
        self.id = identifier
        self._chunks: collections.deque = collections.deque()
        self._readable = asyncio.Event()
        self._eof = False
        self._closed = False
        self._pending: list[bytes] = []
        self._unacked = 0
        self._credit = asyncio.Event()
        self._credit.set()
        self._eof_sent = False

    @property
    def reader(self):
        return self

    @property
    def writer(self):
        return self

    # -- incoming

    def _feed(self, data: bytes) -> None:
        if data and not self._eof:
            self._chunks.append(data)
            self._readable.set()

    def _feed_eof(self) -> None:
        self._eof = True
        self._readable.set()

    def _acked(self, n: int) -> None:
        self._unacked = max(0, self._unacked - n)
        if self._unacked < fx.WINDOW:
            self._credit.set()

    def _gone(self) -> None:
        self._closed = True
        self._eof = True
        self._readable.set()
        self._credit.set()
        self.mux.streams.pop(self.id, None)

    async def read(self, n: int = 65536) -> bytes:
        while not self._chunks:
            if self._eof:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = self._chunks.popleft()
        if len(data) > n:
            self._chunks.appendleft(data[n:])
            data = data[:n]
        if not self._closed:
            self.mux.spawn(self.mux.send(fx.encode_u32(fx.ACK, self.id, len(data))))
        return data

    # -- outgoing

    def write(self, data: bytes) -> None:
        if data:
            self._pending.append(bytes(data))

    async def drain(self) -> None:
        while self._pending:
            data = self._pending.pop(0)
            for start in range(0, len(data), fx.CHUNK):
                piece = data[start:start + fx.CHUNK]
                while not self._closed and self._unacked + len(piece) > fx.WINDOW:
                    self._credit.clear()
                    await self._credit.wait()
                if self._closed:
                    self._pending.clear()
                    raise ConnectionResetError(f"forwarded connection {self.id} was closed")
                self._unacked += len(piece)
                await self.mux.send(fx.encode(fx.DATA, self.id, piece))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if not self._closed and not self._eof_sent:
            self._eof_sent = True
            self.mux.spawn(self.mux.send(fx.encode(fx.EOF, self.id)))

    def get_extra_info(self, name: str, default=None):
        return default

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._gone()
        self.mux.spawn(self.mux.send(fx.encode(fx.CLOSE, self.id)))

    async def wait_closed(self) -> None:
        return None


class Mux:
    def __init__(self, send, *, odd: bool):
        self._send = send
        self.streams: dict[int, MuxStream] = {}
        self._ids = itertools.count(1 if odd else 2, 2)
        self._tasks: set[asyncio.Task] = set()
        self.closed_reason = ""

    async def send(self, payload: bytes) -> None:
        try:
            await self._send(payload)
        except ConnectionError:
            pass  # the tunnel is gone: ``lost`` ends the streams

    def spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def new_id(self) -> int:
        return next(self._ids) & 0xFFFFFFFF

    def open(self, identifier: int) -> MuxStream:
        stream = self.streams[identifier] = MuxStream(self, identifier)
        return stream

    def on_stream_frame(self, op: int, identifier: int, body) -> None:
        stream = self.streams.get(identifier)
        if stream is None:
            if op != fx.CLOSE:
                self.spawn(self.send(fx.encode(fx.CLOSE, identifier)))
            return
        if op == fx.DATA:
            stream._feed(bytes(body))
        elif op == fx.EOF:
            stream._feed_eof()
        elif op == fx.ACK:
            stream._acked(fx.body_u32(body))
        elif op == fx.CLOSE:
            stream._gone()

    def lost(self, reason: str) -> None:
        self.closed_reason = reason
        for stream in list(self.streams.values()):
            stream._gone()


async def _copy(reader, writer) -> None:
    while True:
        data = await reader.read(fx.CHUNK)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def pipe(a_reader, a_writer, b_reader, b_writer) -> None:
    """Copy both ways with half-close until both directions ended (or one failed), then
    close both writers."""
    tasks = [asyncio.ensure_future(_copy(a_reader, b_writer)),
             asyncio.ensure_future(_copy(b_reader, a_writer))]
    try:
        for finished in asyncio.as_completed(tasks):
            try:
                await finished
            except (ConnectionError, OSError):
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in (a_writer, b_writer):
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - closing what is already broken
                pass
