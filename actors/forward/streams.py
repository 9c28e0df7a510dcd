"""The stream-opener abstraction the relay is written against, and its kernel-socket version.

A connection is a ``(reader, writer)`` pair with the asyncio-streams shape, so ``asyncio``
streams and asyncssh's ``SSHReader``/``SSHWriter`` (a remote listener or dialer later) fit as
they are:

- ``await reader.read(n)`` returns up to ``n`` bytes, ``b""`` at end of stream;
- ``writer.write(data)``, ``await writer.drain()``; ``writer.can_write_eof()`` /
  ``writer.write_eof()`` half-close (after ``drain``); ``writer.close()``,
  ``await writer.wait_closed()``.

A listener (``StreamListener``) has ``await accept() -> (reader, writer)`` (raises
``ListenerClosed`` once closed), ``close()`` and ``describe()``; a dialer is any
``async () -> (reader, writer)`` callable that raises ``OSError`` (or ``ForwardingError``) when
the destination cannot be reached.

``SocketReader`` / ``SocketWriter`` wrap one non-blocking kernel socket. They expose it as
``.socket`` so the relay can move bytes between two kernel sockets with ``splice(2)`` (no copy
through Python) instead of the generic read/write loop.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Awaitable, Callable, Protocol


class ListenerClosed(Exception):
    """``accept`` on a listener that was closed."""


class StreamListener(Protocol):
    async def accept(self) -> tuple[object, object]: ...

    def close(self) -> None: ...

    def describe(self) -> str: ...


Dialer = Callable[[], Awaitable[tuple[object, object]]]


class QueueListener:
    """A listener fed by a callback: ``deliver(reader, writer)`` queues a connection accepted
    elsewhere (``asyncio.start_server``, an asyncssh server-side forward handler, a multiplexed
    agent stream) and ``accept`` hands it to the relay. After ``close`` delivered connections
    are closed at once and ``accept`` raises ``ListenerClosed``."""

    def __init__(self, description: str, on_close: Callable[[], None] | None = None):
        self._description = description
        self._queue: asyncio.Queue = asyncio.Queue()
        self._on_close = on_close
        self._closed = False

    def deliver(self, reader, writer) -> None:
        if self._closed:
            writer.close()
            return
        self._queue.put_nowait((reader, writer))

    async def accept(self):
        if self._closed:
            raise ListenerClosed(self._description)
        pair = await self._queue.get()
        if pair is None:
            raise ListenerClosed(self._description)
        return pair

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while not self._queue.empty():
            pair = self._queue.get_nowait()
            if pair is not None:
                pair[1].close()
        self._queue.put_nowait(None)  # wakes a pending accept
        if self._on_close is not None:
            self._on_close()

    def describe(self) -> str:
        return self._description


class SocketReader:
    def __init__(self, sock: socket.socket):
        self.socket = sock

    async def read(self, n: int = 65536) -> bytes:
        return await asyncio.get_running_loop().sock_recv(self.socket, n)


class SocketWriter:
    """Writes are queued by ``write`` and sent by ``drain`` (call it before ``write_eof``)."""

    def __init__(self, sock: socket.socket):
        self.socket = sock
        self._pending: list[bytes] = []
        self._closed = False

    def write(self, data: bytes) -> None:
        if data:
            self._pending.append(data)

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            await loop.sock_sendall(self.socket, self._pending.pop(0))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._pending:
            raise RuntimeError("write_eof with unsent data: await drain() first")
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # already disconnected: nothing left to tell the peer

    def get_extra_info(self, name: str, default=None):
        if name == "socket":
            return self.socket
        if name == "peername":
            try:
                return self.socket.getpeername()
            except OSError:
                return default
        return default

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.socket.close()

    async def wait_closed(self) -> None:
        return None


def socket_pair(sock: socket.socket) -> tuple[SocketReader, SocketWriter]:
    """Wrap a connected socket (made non-blocking) as a ``(reader, writer)`` pair."""
    sock.setblocking(False)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return SocketReader(sock), SocketWriter(sock)
