"""The relay: join every connection accepted by a source listener to a new destination
connection and copy bytes both ways.

Contract (``Relay(listener, dial).serve()``):

- each accepted connection gets its own task: dial the destination, then copy both directions
  at once until both have ended. End of stream in one direction is passed on as a half-close
  (``write_eof``, i.e. ``shutdown(SHUT_WR)``) and the other direction keeps flowing. An error
  in either direction (reset, broken pipe) ends the connection: both sides are closed.
- a dial failure (refused, unreachable, timed out) closes the accepted connection at once,
  counts an error and records ``last_error``; the relay keeps serving. Accept failures (e.g.
  out of file descriptors) are counted the same way, with a short pause before the next accept.
- statistics (``RelayStatistics``, live): open connections, total connections, bytes
  ``outbound`` (source to destination) and ``inbound`` (destination to source), errors, the
  last error. Connection resets during the copy are normal life for a network, not errors.
- when both ends of a connection are kernel sockets (``.socket`` on reader and writer) the
  bytes move with ``splice(2)`` through a pipe, never entering Python; otherwise (SSH channels,
  docker pipes, any ``(reader, writer)`` pair) a read/write loop with 256 KiB reads is used.
- ``close()`` stops accepting, closes the listener and drops every open connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import socket
from dataclasses import dataclass

import structlog

from .streams import Dialer, ListenerClosed, StreamListener

CHUNK = 256 * 1024
PIPE_SIZE = 1024 * 1024
ACCEPT_FAILURE_PAUSE = 0.1
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)


@dataclass
class RelayStatistics:
    open_connections: int = 0
    total_connections: int = 0
    outbound_bytes: int = 0
    inbound_bytes: int = 0
    errors: int = 0
    last_error: str = ""

    def copy(self) -> "RelayStatistics":
        return RelayStatistics(**self.__dict__)


class Relay:
    def __init__(self, listener: StreamListener, dial: Dialer, *, log=None,
                 use_splice: bool = True):
        self.listener = listener
        self.dial = dial
        self.statistics = RelayStatistics()
        self.log = log or structlog.get_logger("forward")
        self.use_splice = use_splice and hasattr(os, "splice")
        self._connections: set[asyncio.Task] = set()
        self._serving: asyncio.Task | None = None
        self._closed = False

    def start(self) -> asyncio.Task:
        """Serve in a background task (returned)."""
        self._serving = asyncio.ensure_future(self.serve())
        return self._serving

    async def serve(self) -> None:
        while not self._closed:
            try:
                reader, writer = await self.listener.accept()
            except ListenerClosed:
                return
            except OSError as error:
                if self._closed:
                    return
                self._error(f"accept failed on {self.listener.describe()}: "
                            f"{error.strerror or error}")
                await asyncio.sleep(ACCEPT_FAILURE_PAUSE)
                continue
            self.statistics.total_connections += 1
            self.statistics.open_connections += 1
            task = asyncio.ensure_future(self._connection(reader, writer))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def close(self) -> None:
        self._closed = True
        if self._serving is not None:
            self._serving.cancel()
            await asyncio.gather(self._serving, return_exceptions=True)
        self.listener.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _error(self, text: str) -> None:
        self.statistics.errors += 1
        self.statistics.last_error = text
        self.log.warning("forwarding error", error=text)

    async def _connection(self, source_reader, source_writer) -> None:
        destination_writer = None
        try:
            try:
                destination_reader, destination_writer = await self.dial()
            except Exception as error:  # noqa: BLE001 - counted, never fatal
                self._error(str(error) or type(error).__name__)
                return
            await self._copy_both(source_reader, source_writer,
                                  destination_reader, destination_writer)
        finally:
            self.statistics.open_connections -= 1
            for writer in (source_writer, destination_writer):
                if writer is not None:
                    _close(writer)

    async def _copy_both(self, source_reader, source_writer, destination_reader,
                         destination_writer) -> None:
        stats = self.statistics

        def outbound(n: int) -> None:
            stats.outbound_bytes += n

        def inbound(n: int) -> None:
            stats.inbound_bytes += n

        pair = _sockets(source_reader, source_writer, destination_reader, destination_writer)
        if self.use_splice and pair is not None:
            source, destination = pair
            directions = [_splice(source, destination, outbound),
                          _splice(destination, source, inbound)]
        else:
            directions = [_copy(source_reader, destination_writer, outbound),
                          _copy(destination_reader, source_writer, inbound)]
        tasks = [asyncio.ensure_future(d) for d in directions]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                error = task.exception()
                if error is not None and not _is_disconnect(error):
                    self._error(f"connection ended by an error: {type(error).__name__}: "
                                f"{error}")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _sockets(source_reader, source_writer, destination_reader, destination_writer):
    sockets = [getattr(o, "socket", None) for o in (source_reader, source_writer,
                                                    destination_reader, destination_writer)]
    if any(s is None for s in sockets):
        return None
    if sockets[0] is not sockets[1] or sockets[2] is not sockets[3]:
        return None
    return sockets[0], sockets[2]


def _is_disconnect(error: BaseException) -> bool:
    return isinstance(error, (ConnectionError, BrokenPipeError)) or (
        isinstance(error, OSError) and error.errno in (errno.ECONNRESET, errno.EPIPE,
                                                       errno.ENOTCONN, errno.ETIMEDOUT))


def _close(writer) -> None:
    try:
        writer.close()
    except Exception:  # noqa: BLE001 - closing what is already broken
        pass


async def _copy(reader, writer, count) -> None:
    """Generic direction: read/write until end of stream, then half-close the writer."""
    while True:
        data = await reader.read(CHUNK)
        if not data:
            break
        writer.write(data)
        await writer.drain()
        count(len(data))
    if writer.can_write_eof():
        writer.write_eof()


async def _wait(fd: int, writable: bool) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if writable:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if writable:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def _splice(source: socket.socket, destination: socket.socket, count) -> None:
    """Kernel-socket direction: socket -> pipe -> socket with splice(2); half-close at EOF.
    Falls back to a recv_into/sendall loop if the kernel refuses to splice these sockets."""
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):  # a smaller pipe only costs speed
            fcntl.fcntl(write_end, _F_SETPIPE_SZ, PIPE_SIZE)
        source_fd, destination_fd = source.fileno(), destination.fileno()
        buffered = 0
        moved = False
        while True:
            if buffered == 0:
                try:
                    n = os.splice(source_fd, write_end, PIPE_SIZE, flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    await _wait(source_fd, writable=False)
                    continue
                except OSError as error:
                    if not moved and error.errno in (errno.EINVAL, errno.ENOSYS,
                                                     errno.EOPNOTSUPP):
                        await _copy_sockets(source, destination, count)
                        return
                    raise
                if n == 0:
                    break
                buffered = n
                moved = True
            try:
                n = os.splice(read_end, destination_fd, buffered, flags=_SPLICE_FLAGS)
            except BlockingIOError:
                await _wait(destination_fd, writable=True)
                continue
            buffered -= n
            count(n)
    finally:
        os.close(read_end)
        os.close(write_end)
    with contextlib.suppress(OSError):
        destination.shutdown(socket.SHUT_WR)


async def _copy_sockets(source: socket.socket, destination: socket.socket, count) -> None:
    loop = asyncio.get_running_loop()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while True:
        n = await loop.sock_recv_into(source, buffer)
        if n == 0:
            break
        await loop.sock_sendall(destination, view[:n])
        count(n)
    with contextlib.suppress(OSError):
        destination.shutdown(socket.SHUT_WR)
