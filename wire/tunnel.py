"""The agent tunnel: ZeroMQ request/reply traffic carried over one byte stream.

The stream is a remote agent's stdin/stdout (an SSH channel or a ``docker exec -i`` pipe), after
the handshake (``wire.handshake``). On it travel frames::

    header = kind|flags (1 byte) + body length (u32, big-endian)
    DATA   body = route length (1 byte) + route + payload (one codec frame)
    PING   body = 8-byte nonce          PONG body = the nonce of the ping it answers
    CLOSE  body = a UTF-8 reason (orderly end; the peer reports it)

Flag ``0x80`` (``COMPRESSED``) means the body is an lz4 block (with its size stored) of the
plain body. It is set only when lz4 was agreed in the handshake, the body is at least
``COMPRESS_THRESHOLD`` bytes, and the block is smaller than the plain body. A DATA frame's
``route`` is the ZeroMQ identity of the requester on the daemon side (empty: a message from the
agent that answers nobody, e.g. ``EndpointChanged``).

Why our own framing rather than ZMTP through a relay: the frame boundary is visible here, so
compression can be per frame, heartbeats share the stream without reaching the actors, and a
garbage byte is a ``ProtocolError`` at a known place. Each end still speaks ZeroMQ to its own
actors (``TunnelBridge`` below), so actors do not know whether their peer is local.

Liveness: each side sends PING every ``interval`` seconds and counts any frame as a sign of life
(``wire.heartbeat.Liveness``); nothing heard for ``interval * misses`` seconds closes the tunnel
with "no sign of life ...". End of stream, a frame that does not decode and CLOSE also close it.
``Tunnel.closed`` is a future that completes with ``TunnelClosed(reason)`` (never left
unobserved); callers wait on ``wait_closed()``.

``FrameDecoder`` and ``encode_frame`` are pure (no I/O) and tested alone.

Traffic accounting (for benchmarks): with ``MUTAGEN_ACTORS_TRAFFIC_LOG=<path>`` in its
environment, a tunnel appends one JSON line per DATA frame it sends or receives to that file:
``[time, "sent"|"received", message type, payload bytes, bytes on the stream]`` (the type read
from the frame's header by ``message_type``; the stream size after compression, header
included). Without the variable nothing is recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
from collections import deque
from typing import Awaitable, Callable, Optional

import structlog

from . import codec
from .errors import ProtocolError
from .handling import answer
from .heartbeat import Liveness
from .messages.base import ErrorReply, Ping, Pong
from .version import MAX_FRAME_SIZE

DATA, PING, PONG, CLOSE = 1, 2, 3, 4
KINDS = {DATA: "DATA", PING: "PING", PONG: "PONG", CLOSE: "CLOSE"}
COMPRESSED = 0x80
_KIND_MASK = 0x0F
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size
COMPRESS_THRESHOLD = 512
JOIN_BELOW = 64 * 1024  # frames smaller than this are written as one buffer
MAX_BODY = MAX_FRAME_SIZE + 256 + 1024  # a codec frame, its route, lz4's worst-case growth

TRAFFIC_LOG_ENV = "MUTAGEN_ACTORS_TRAFFIC_LOG"

log = structlog.get_logger("wire.tunnel")

try:  # lz4 is a dependency, but the handshake only offers it when it imports
    import lz4.block as _lz4
except ImportError:  # pragma: no cover
    _lz4 = None


class TunnelClosed(ConnectionError):
    """The tunnel is closed; the text says why (end of stream, no sign of life, ...)."""


# --------------------------------------------------------------------------------- pure framing


def lz4_available() -> bool:
    return _lz4 is not None


def frame_parts(kind: int, body: bytes, *, compress: bool = False, prefix: bytes = b"") -> list:
    """One frame as buffers to write in order; the body is ``prefix + body`` (a DATA frame's
    route goes in ``prefix``). A frame below ``JOIN_BELOW`` bytes is one buffer (an SSH channel
    sends each write as its own packet); a larger payload is never copied unless compressed.

    Compression is tried only when allowed, for bodies of at least ``COMPRESS_THRESHOLD``
    bytes; for bodies of 128 KiB or more a 64 KiB sample (four pieces) is tried first and
    random-looking data is sent as it is (no time spent compressing what will not shrink)."""
    size = len(prefix) + len(body)
    if compress and size >= COMPRESS_THRESHOLD and _lz4 is not None:
        if size < 8 * _SAMPLE or _sample_compresses(body):
            packed = _lz4.compress(prefix + body if prefix else body, store_size=True)
            if len(packed) < size:
                if len(packed) < JOIN_BELOW:
                    return [_HEADER.pack(kind | COMPRESSED, len(packed)) + packed]
                return [_HEADER.pack(kind | COMPRESSED, len(packed)), packed]
    if size < JOIN_BELOW:
        # One buffer: each write to an SSH channel becomes at least one packet of its own.
        return [_HEADER.pack(kind, size) + prefix + body]
    return [_HEADER.pack(kind, size) + prefix, body]


_SAMPLE = 16 * 1024


def _sample_compresses(body) -> bool:
    """Whether 16 KiB pieces from the start, the thirds and the end shrink by 10 % or more."""
    size = len(body)
    pieces = [body[at:at + _SAMPLE] for at in (0, size // 3, 2 * size // 3, size - _SAMPLE)]
    sample = b"".join(pieces)
    return len(_lz4.compress(sample, store_size=False)) < 0.9 * len(sample)


def encode_frame(kind: int, body: bytes, *, compress: bool = False) -> bytes:
    """One frame as bytes (see ``frame_parts``)."""
    return b"".join(frame_parts(kind, body, compress=compress))


def route_prefix(route: bytes) -> bytes:
    if len(route) > 255:
        raise ValueError(f"route of {len(route)} bytes (at most 255)")
    return bytes((len(route),)) + route


def data_body(route: bytes, payload: bytes) -> bytes:
    return route_prefix(route) + payload


def split_data(body: bytes) -> tuple[bytes, memoryview]:
    """DATA body -> (route, payload: a view, not a copy); ``ProtocolError`` if the route
    overruns the body."""
    if not body:
        raise ProtocolError("DATA frame without a route length")
    size = body[0]
    if 1 + size > len(body):
        raise ProtocolError(f"DATA frame route of {size} bytes overruns its {len(body)}-byte body")
    view = memoryview(body)
    return bytes(view[1:1 + size]), view[1 + size:]


_INT_SIZES = {0xcc: 2, 0xcd: 3, 0xce: 5, 0xcf: 9, 0xd0: 2, 0xd1: 3, 0xd2: 5, 0xd3: 9}
_ARRAY_SIZES = {0xdc: 3, 0xdd: 5}
_STR_LENGTHS = {0xd9: 1, 0xda: 2, 0xdb: 4}


def message_type(payload) -> str:
    """The message type name in a codec frame (``[version, id, reply_to, [type, ...]]``), read
    from its first bytes without decoding the rest; ``"?"`` if it is not such a frame (pure)."""
    try:
        data = bytes(payload[:64])
        at = 1 if 0x90 <= data[0] <= 0x9f else _ARRAY_SIZES[data[0]]
        for _ in range(3):
            first = data[at]
            at += 1 if first <= 0x7f or first >= 0xe0 else _INT_SIZES[first]
        first = data[at]
        at += 1 if 0x90 <= first <= 0x9f else _ARRAY_SIZES[first]
        first = data[at]
        if 0xa0 <= first <= 0xbf:
            size, at = first & 0x1f, at + 1
        else:
            width = _STR_LENGTHS[first]
            size = int.from_bytes(data[at + 1:at + 1 + width], "big")
            at += 1 + width
        name = data[at:at + size]
        if len(name) != size:
            return "?"
        return name.decode()
    except (IndexError, KeyError, UnicodeDecodeError):
        return "?"


class FrameDecoder:
    """Incremental decoder: ``feed(bytes)`` returns the complete frames as ``(kind, body)``;
    ``sizes`` then holds each returned frame's size on the stream (header included).

    A plain DATA frame of ``FILL_FROM`` to ``FILL_MAX`` bytes whose header has arrived but not
    its whole body is assembled in a ``bytearray`` of its size, allocated then: the bytes fed
    are copied into it once (instead of kept as pieces, joined, then sliced out: two copies).
    Such a body is returned as that ``bytearray``; every other body is ``bytes``.

    Raises ``ProtocolError`` for an unknown kind or flag, a length above ``max_body``, a
    compressed frame when compression was not agreed, or a block that does not decompress.
    After an error the decoder must not be used again (the stream is out of step).
    """

    FILL_FROM = 64 * 1024
    FILL_MAX = 16 << 20  # larger announced bodies are not allocated before their bytes arrive

    def __init__(self, *, compression: bool, max_body: int = MAX_BODY):
        self.compression = compression
        self.max_body = max_body
        # Pieces received but not yet returned, and how many bytes they hold: a large frame
        # arrives in many small reads (32 KiB SSH packets), and growing one buffer by each of
        # them re-copied it again and again (~1.2 ms per MiB); the pieces are joined once, when
        # the frame they carry is complete.
        self._pieces: list[bytes] = []
        self._held = 0
        self._need = HEADER_SIZE  # bytes needed before anything more can be decoded
        self._body: Optional[bytearray] = None  # the DATA body being filled (see above)
        self._filled = 0
        self.sizes: list[int] = []

    def _completed(self, sizes: list) -> tuple[int, bytearray]:
        body, self._body = self._body, None
        sizes.append(HEADER_SIZE + len(body))
        return DATA, body

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.sizes = sizes = []
        frames = []
        if self._body is not None and data:
            view = memoryview(data)
            take = min(len(view), len(self._body) - self._filled)
            self._body[self._filled:self._filled + take] = view[:take]
            self._filled += take
            if self._filled < len(self._body):
                return frames
            frames.append(self._completed(sizes))
            data = view[take:]
        if data:
            self._pieces.append(bytes(data))
            self._held += len(data)
        if self._held < self._need:
            return frames
        pieces = self._pieces
        buffer = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        offset = 0
        end = len(buffer)
        need = HEADER_SIZE
        while end - offset >= HEADER_SIZE:
            first, size = _HEADER.unpack_from(buffer, offset)
            kind, flags = first & _KIND_MASK, first & ~_KIND_MASK
            if kind not in KINDS or flags & ~COMPRESSED:
                raise ProtocolError(f"unknown tunnel frame type 0x{first:02x}")
            if size > self.max_body:
                raise ProtocolError(f"oversized tunnel frame: {size} bytes (limit {self.max_body})")
            if end - offset - HEADER_SIZE < size:
                if first == DATA and self.FILL_FROM <= size <= self.FILL_MAX:
                    # Assembled in place from here on (see the class docstring).
                    start = offset + HEADER_SIZE
                    self._body = bytearray(size)
                    self._body[:end - start] = memoryview(buffer)[start:end]
                    self._filled = end - start
                    offset = end
                else:
                    need = HEADER_SIZE + size
                break
            body = buffer[offset + HEADER_SIZE: offset + HEADER_SIZE + size]
            offset += HEADER_SIZE + size
            if flags & COMPRESSED:
                body = self._decompress(body)
            frames.append((kind, body))
            sizes.append(HEADER_SIZE + size)
        rest = buffer[offset:] if offset else buffer
        self._pieces = [rest] if rest else []
        self._held = len(rest)
        self._need = need
        return frames

    def _decompress(self, body: bytes) -> bytes:
        if not self.compression or _lz4 is None:
            raise ProtocolError("compressed tunnel frame, but compression was not agreed")
        if len(body) < 4 or int.from_bytes(body[:4], "little") > self.max_body:
            raise ProtocolError("compressed tunnel frame with an invalid size")
        try:
            return _lz4.decompress(body)
        except Exception as error:  # noqa: BLE001 - lz4 raises LZ4BlockError (a RuntimeError)
            raise ProtocolError(f"compressed tunnel frame does not decompress: {error}") from None


# ---------------------------------------------------------------------------- reading a descriptor

PIPE_SIZE = 1 << 20  # what grow_pipe asks of a pipe (Linux's unprivileged maximum by default)
_F_SETPIPE_SZ = 1031  # fcntl.h (Linux); fcntl.F_SETPIPE_SZ from Python 3.10


def grow_pipe(fd: int, size: int = PIPE_SIZE) -> int:
    """Ask the kernel for a ``size``-byte buffer on pipe ``fd`` (Linux ``F_SETPIPE_SZ``);
    returns the size it now has, 0 when ``fd`` is not a pipe or the call is refused (another
    system, a limit): never raises."""
    try:
        import fcntl

        return fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", _F_SETPIPE_SZ), size)
    except (OSError, ImportError, ValueError):
        return 0


class PipeReader(asyncio.Protocol):
    """The ``read(n)`` of an asyncio stream over a loop's read-pipe transport
    (``loop.connect_read_pipe(lambda: reader, pipe)``): the remote agent's stdin.

    Each piece the transport read is handed to ``read`` as it came (a ``StreamReader`` copies
    it into its buffer and out again); a piece longer than ``n`` is split. Back-pressure: the
    transport is paused while more than ``LIMIT`` bytes are unread and resumed below half of
    it. ``read`` returns ``b""`` at end of stream (after what was received), and raises the
    error the transport was lost with; one reader at a time."""

    LIMIT = 2 << 20

    def __init__(self) -> None:
        self._pieces: deque = deque()
        self._held = 0
        self._ended = False
        self._error: Optional[BaseException] = None
        self._waiter: Optional[asyncio.Future] = None
        self._transport = None
        self._paused = False

    def connection_made(self, transport) -> None:
        self._transport = transport
        transport.max_size = PIPE_SIZE  # one read takes up to a (grown) pipe-full

    def data_received(self, data: bytes) -> None:
        self._pieces.append(data)
        self._held += len(data)
        if self._held > self.LIMIT and not self._paused:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self):
        self._ended = True
        self._wake()
        return False

    def connection_lost(self, error) -> None:
        self._ended = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, n: int = -1) -> bytes:
        while not self._pieces:
            if self._ended:
                if self._error is not None:
                    raise self._error
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        piece = self._pieces.popleft()
        if 0 < n < len(piece):
            self._pieces.appendleft(piece[n:])
            piece = piece[:n]
        self._held -= len(piece)
        if self._paused and self._held < self.LIMIT // 2:
            self._paused = False
            self._transport.resume_reading()
        return piece


# ------------------------------------------------------------------------------------- the tunnel

DataHandler = Callable[[bytes, bytes], Optional[Awaitable[None]]]


class Tunnel:
    """Frames over ``reader``/``writer`` (asyncio-stream-like: ``read(n)``, ``write``, ``drain``,
    ``close``). ``on_data(route, payload)`` is called for each DATA frame, in order (a coroutine
    it returns is awaited before the next frame is read: back-pressure).

    ``start()`` begins reading and heartbeats; ``send(route, payload)`` writes a DATA frame
    (raises ``TunnelClosed`` once closed); ``close(reason)`` sends CLOSE and closes the writer.
    """

    def __init__(self, reader, writer, on_data: DataHandler, *, compression: bool = False,
                 interval: float = 1.0, misses: int = 3, peer: str = "remote agent", log=None):
        self.reader = reader
        self.writer = writer
        self.on_data = on_data
        self.compression = compression
        self.peer = peer
        self.log = log or globals()["log"]
        self.liveness = Liveness(interval, misses, last_heard=time.monotonic())
        self._last_read = self.liveness.last_heard  # the last read, for liveness (_heartbeat)
        self.round_trip: float | None = None  # last heartbeat round trip, seconds
        self.frames_sent = self.frames_received = 0
        self.bytes_sent = self.bytes_received = 0  # on the stream (after compression)
        self.payload_bytes_sent = 0  # before compression
        self._decoder = FrameDecoder(compression=compression)
        self._closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self._closed.add_done_callback(lambda f: f.exception())  # observed even if nobody waits
        self._tasks: list[asyncio.Task] = []
        self._pings: dict[bytes, float] = {}
        self._write_lock = asyncio.Lock()
        self._traffic = None
        traffic_path = os.environ.get(TRAFFIC_LOG_ENV)
        if traffic_path:
            try:
                self._traffic = open(traffic_path, "a", buffering=1)
            except OSError as error:
                self.log.warning("traffic log not writable", path=traffic_path, error=str(error))

    def _account(self, direction: str, payload, stream_bytes: int) -> None:
        line = json.dumps([round(time.time(), 3), direction, message_type(payload), len(payload),
                           stream_bytes])
        try:
            self._traffic.write(line + "\n")
        except (OSError, ValueError):
            self._traffic = None

    # -- lifecycle

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read_loop()), loop.create_task(self._heartbeat())]

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    async def wait_closed(self) -> TunnelClosed:
        """Wait until the tunnel is closed; returns the ``TunnelClosed`` saying why."""
        return await asyncio.shield(self._closed_reason())

    async def _closed_reason(self) -> TunnelClosed:
        try:
            await self._closed
        except TunnelClosed as closed:
            return closed
        raise AssertionError("the closed future always holds a TunnelClosed")

    def _finish(self, reason: str) -> None:
        if self._closed.done():
            return
        self.log.info("tunnel closed", peer=self.peer, reason=reason)
        if self._traffic is not None:
            self._traffic.close()
            self._traffic = None
        self._closed.set_exception(TunnelClosed(reason))
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - the stream may already be gone
            pass

    async def close(self, reason: str = "closed by this side") -> None:
        """Orderly close: CLOSE frame (best effort, 1 s), then the writer."""
        if self._closed.done():
            return
        try:
            await asyncio.wait_for(self._write(CLOSE, reason.encode()), 1.0)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self._finish(reason)
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- sending

    async def send(self, route: bytes, payload, head: bytes = b"") -> None:
        """Write a DATA frame to ``route`` carrying ``head + payload`` (``head``: a relayed
        message's new envelope, ``codec.RawFrame.head``, so its body is never copied or joined
        here; ``payload`` may be a memoryview)."""
        if self._closed.done():
            raise self._closed.exception()
        self.payload_bytes_sent += len(head) + len(payload)
        written = await self._write(DATA, payload, route_prefix(route) + head)
        if self._traffic is not None:
            self._account("sent", head + payload if head else payload, written)

    async def _write(self, kind: int, body: bytes, prefix: bytes = b"") -> int:
        parts = frame_parts(kind, body, compress=self.compression, prefix=prefix)
        async with self._write_lock:
            try:
                for part in parts:
                    self.writer.write(part)
                await self.writer.drain()
            except (ConnectionError, BrokenPipeError, OSError) as error:
                self._finish(f"the stream to the {self.peer} broke: {error}")
                raise self._closed.exception() from None
            except Exception as error:  # noqa: BLE001 - asyncssh raises its own errors
                if self._closed.done():
                    raise self._closed.exception() from None
                self._finish(f"the stream to the {self.peer} broke: {type(error).__name__}: {error}")
                raise self._closed.exception() from None
        self.frames_sent += 1
        written = sum(len(part) for part in parts)
        self.bytes_sent += written
        return written

    # -- receiving

    async def _read_loop(self) -> None:
        try:
            reader = self.reader
            decoder = self._decoder
            while True:
                try:
                    chunk = await reader.read(1 << 20)
                    count = len(chunk)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - any read failure ends the tunnel
                    self._finish(f"reading from the {self.peer} failed: {type(error).__name__}: {error}")
                    return
                if not count:
                    self._finish(f"the {self.peer} closed the stream")
                    return
                self.bytes_received += count
                self._last_read = time.monotonic()  # folded into liveness by _heartbeat
                try:
                    frames = decoder.feed(chunk)
                except ProtocolError as error:
                    self._finish(f"protocol error from the {self.peer}: {error}")
                    return
                for (kind, body), size in zip(frames, decoder.sizes):
                    self.frames_received += 1
                    if self._traffic is not None and kind == DATA and body:
                        self._account("received", memoryview(body)[1 + body[0]:], size)
                    if not await self._dispatch(kind, body):
                        return
        except asyncio.CancelledError:
            pass

    async def _dispatch(self, kind: int, body: bytes) -> bool:
        if kind == DATA:
            try:
                route, payload = split_data(body)
            except ProtocolError as error:
                self._finish(f"protocol error from the {self.peer}: {error}")
                return False
            result = self.on_data(route, payload)
            if result is not None:
                await result
        elif kind == PING:
            # Never wait for the write lock here: with both ends writing large frames, a read
            # loop waiting to write would stop reading and the two ends would wait on each
            # other. A write in progress already tells the peer we are alive.
            if not self._write_lock.locked():
                self._spawn(self._write(PONG, body))
        elif kind == PONG:
            sent = self._pings.pop(body, None)
            if sent is not None:
                self.round_trip = time.monotonic() - sent
        elif kind == CLOSE:
            reason = body.decode("utf-8", errors="replace")
            self._finish(f"the {self.peer} closed the tunnel: {reason}")
            return False
        return True

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(self._quietly(coroutine))
        self._tasks.append(task)
        task.add_done_callback(lambda t: t in self._tasks and self._tasks.remove(t))

    @staticmethod
    async def _quietly(coroutine) -> None:
        try:
            await coroutine
        except (TunnelClosed, asyncio.CancelledError):
            pass

    async def _heartbeat(self) -> None:
        liveness = self.liveness
        step = liveness.interval / 4
        try:
            while True:
                now = time.monotonic()
                self.liveness = self.liveness.heard(self._last_read)
                if self.liveness.dead(now):
                    silent = now - self.liveness.last_heard
                    self._finish(f"no sign of life from the {self.peer} for {silent:.1f} s "
                                 f"(heartbeat every {liveness.interval:g} s)")
                    return
                if self.liveness.ping_due(now):
                    self.liveness = self.liveness.pinged(now)
                    nonce = os.urandom(8)
                    self._pings = {nonce: now}  # only the latest ping is timed
                    try:
                        # A stalled stream must not stall the liveness check itself.
                        await asyncio.wait_for(asyncio.shield(self._write(PING, nonce)), step)
                    except asyncio.TimeoutError:
                        pass
                    except TunnelClosed:
                        return
                await asyncio.sleep(step)
        except asyncio.CancelledError:
            pass


# ------------------------------------------------------------------------- ZeroMQ at either end


class TunnelBridge:
    """Daemon side: a ZeroMQ ROUTER at ``endpoint`` (``ipc://``, private) that stands for the
    remote agent's mailbox. A DEALER (``wire.sockets.DealerClient``) connected to it talks to
    the agent as if it were local: each ``[identity, frame]`` goes through the tunnel with the
    identity as its route, and the agent's answer comes back to that identity. A route-less
    message from the agent goes to ``notify`` (a DEALER connected there) when given, else it is
    dropped. Frames are not decoded here (the agent and the requester validate them).
    """

    def __init__(self, context, endpoint: str, *, notify: str | None = None, log=None):
        import zmq  # the remote agent never needs this class: keep its import lazy

        self._zmq = zmq
        self.endpoint = endpoint
        self.log = log or globals()["log"]
        self.tunnel: Tunnel | None = None
        self._router = context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_SIZE + 65536)
        self._router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._notify = None
        if notify:
            self._notify = context.socket(zmq.DEALER)
            self._notify.setsockopt(zmq.LINGER, 0)
            self._notify.connect(notify)
        self._task: asyncio.Task | None = None

    def bind(self) -> None:
        path = self.endpoint[len("ipc://"):] if self.endpoint.startswith("ipc://") else None
        if path and os.path.lexists(path):
            os.unlink(path)
        self._router.bind(self.endpoint)
        if path:
            os.chmod(path, 0o600)

    def attach(self, tunnel: Tunnel) -> None:
        """Start relaying requests into ``tunnel`` (whose ``on_data`` must be ``deliver``)."""
        self.tunnel = tunnel
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def deliver(self, route: bytes, payload: bytes) -> None:
        """``Tunnel.on_data``: hand an agent's message to the requester it names."""
        zmq = self._zmq
        try:
            if route:
                await self._router.send_multipart([route, payload], flags=zmq.NOBLOCK)
            elif self._notify is not None:
                await self._notify.send(payload, flags=zmq.NOBLOCK)
        except zmq.ZMQError as error:  # the requester went away, or notify is full
            self.log.debug("tunnel message not delivered", error=str(error))

    async def _pump(self) -> None:
        try:
            while True:
                parts = await self._router.recv_multipart()
                if len(parts) != 2:
                    self.log.warning("protocol error on tunnel bridge", error=f"{len(parts) - 1} frames")
                    continue
                try:
                    await self.tunnel.send(parts[0], parts[1])
                except TunnelClosed:
                    return  # requests now go unanswered; requesters time out (deadlines)
                # Not kept while waiting for the next request (a relayed batch is ~1 MiB).
                del parts
        except asyncio.CancelledError:
            pass

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._router.close(linger=0)
        if self._notify is not None:
            self._notify.close(linger=0)
        path = self.endpoint[len("ipc://"):] if self.endpoint.startswith("ipc://") else None
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


class RequestServer:
    """Agent side: answer each DATA frame through ``handler`` (``wire.handling`` contract).

    ``Ping`` is answered with ``Pong`` at once; a frame that does not decode is logged and
    answered with ``ErrorReply("protocol", ...)``, as a reply to its request id when its
    envelope is readable (``codec.peek_id``: e.g. a relayed body that does not validate fails
    that request alone), else with ``reply_to`` 0. Requests are handled concurrently, each
    answered to its route with ``reply_to`` set. ``send(body)`` sends a route-less message
    (e.g. a notification) to the daemon side.
    """

    def __init__(self, handler, *, log=None):
        self.handler = handler
        self.log = log or globals()["log"]
        self.tunnel: Tunnel | None = None
        self._tasks: set[asyncio.Task] = set()

    async def on_data(self, route: bytes, payload: bytes) -> None:
        # Replies are written by tasks: the tunnel's read loop must never wait for a write.
        try:
            envelope = codec.decode(payload)
        except ProtocolError as error:
            self.log.warning("protocol error on tunnel", error=str(error))
            self._spawn(self._reply(route, ErrorReply("protocol", str(error)),
                                    codec.peek_id(payload)))
            return
        if isinstance(envelope.body, Ping):
            self._spawn(self._reply(route, Pong(envelope.body.nonce), envelope.id))
            return
        self._spawn(self._answer(route, envelope))

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, route: bytes, envelope) -> None:
        reply = await answer(self.handler, envelope.body, self.log)
        if envelope.id:
            await self._reply(route, reply, envelope.id)

    async def _reply(self, route: bytes, body, reply_to: int) -> None:
        try:
            await self.tunnel.send(route, codec.encode(body, reply_to=reply_to))
        except TunnelClosed:
            pass

    async def send(self, body) -> None:
        await self.tunnel.send(b"", codec.encode(body))

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
