"""ZeroMQ helpers (asyncio): an actor's ROUTER mailbox and the DEALER client that talks to it.

This module and ``codec`` are the only places that know ZeroMQ framing and msgpack.

Mailbox (``Mailbox``, ROUTER, bound to an ``ipc://`` path in a private directory):

- one ZeroMQ message = ``[peer identity, codec frame]`` (the DEALER sends a single frame);
- a message with another number of parts, a frame that fails to decode (malformed msgpack,
  unknown type, a field of the wrong type, another protocol version) or a frame above
  ``max_frame`` bytes is logged as a protocol error and dropped; the mailbox carries on;
- ``ZMQ_MAXMSGSIZE`` is ``max_frame + 64 KiB``: a frame a little too big still reaches the codec and
  is logged; a grossly oversized one makes libzmq drop that peer's connection before buffering it
  (memory stays bounded; the mailbox carries on);
- ``Ping`` is answered with ``Pong`` by the receive loop itself (heartbeats never queue behind
  work);
- everything else is returned by ``receive()`` as a ``Request``; ``Request.reply`` answers it.
  A reply body may be a ``codec.RawFrame`` (a reply a relay received header-only): its encoded
  body is sent as it came under this reply's envelope; the requester decodes and validates it
  as any other reply.
- header-only receive: message types named in ``Mailbox.relay`` (set by an actor that only
  passes them on, ``Actor.RELAY``) are not decoded: their envelope is checked (``codec.peek``:
  size, msgpack syntax, version, a known type) and ``Request.body`` is a ``codec.RawFrame``
  holding the encoded body. Whoever finally receives such a message decodes and validates it
  (and refuses it with a clear error if it does not validate; the relay passes that refusal
  back as its reply).

Client (``DealerClient``): ``await client.request(body, timeout=...)`` sends with a fresh request
id and returns the reply body; raises ``RequestTimeout`` past the deadline and ``RemoteError``
for an ``ErrorReply``. ``ZMQ_IMMEDIATE`` is set so nothing is queued for a peer that is not
connected (a message meant for a dead incarnation is never delivered to the next one).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from dataclasses import dataclass

import structlog
import zmq
import zmq.asyncio

from . import codec
from .deadline import within
from .errors import ProtocolError, RemoteError, RequestTimeout
from .messages.base import ErrorReply, Ping, Pong
from .version import MAX_FRAME_SIZE

ZMQ_SLACK = 64 * 1024

_default_log = structlog.get_logger("wire.sockets")
_received = [0]  # bytes of the replies every DealerClient of this process has received


def received_bytes() -> int:
    """Bytes of replies the ``DealerClient``s of this process have received so far (frames as
    they came, before decoding): a cheap measure of how much was decoded (``actors.syncsession.
    reconciler`` repacks its trees after big replies)."""
    return _received[0]


def ipc_path(endpoint: str) -> str | None:
    return endpoint[len("ipc://"):] if endpoint.startswith("ipc://") else None


@dataclass
class Request:
    """A decoded request from a peer; ``reply`` answers it (no-op when ``id`` is 0)."""

    body: object
    id: int
    peer: bytes
    mailbox: "Mailbox"

    async def reply(self, body) -> None:
        if self.id:
            await self.mailbox.send_to(self.peer, body, reply_to=self.id)


class Mailbox:
    """ROUTER server bound at ``endpoint``; see the module docstring for the rules."""

    def __init__(self, context: zmq.asyncio.Context, endpoint: str, *,
                 max_frame: int = MAX_FRAME_SIZE, log=None):
        self.endpoint = endpoint
        self.max_frame = max_frame
        self.log = log or _default_log
        self.protocol_errors = 0
        self.last_activity = time.time()
        self.relay: frozenset = frozenset()  # message type names received header-only
        self._socket = context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.MAXMSGSIZE, max_frame + ZMQ_SLACK)

    def bind(self) -> None:
        path = ipc_path(self.endpoint)
        if path and os.path.lexists(path):
            os.unlink(path)  # a stale mailbox of a killed incarnation
        self._socket.bind(self.endpoint)
        if path:
            os.chmod(path, 0o600)

    def close(self) -> None:
        self._socket.close(linger=0)
        path = ipc_path(self.endpoint)
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    async def send_to(self, peer: bytes, body, *, reply_to: int = 0) -> None:
        """Send ``body`` to ``peer``; a ``codec.RawFrame`` (a reply relayed header-only) goes out
        as it came, under a new envelope (``reply_to``)."""
        if isinstance(body, codec.RawFrame):
            frame = body.reframed(reply_to=reply_to)
        else:
            frame = codec.encode(body, reply_to=reply_to)
        await self._socket.send_multipart([peer, frame])

    async def receive(self) -> Request:
        """Wait for the next valid request that is not a heartbeat."""
        while True:
            parts = await self._socket.recv_multipart()
            self.last_activity = time.time()
            if len(parts) != 2:
                self._protocol_error(f"expected 1 frame per message, got {len(parts) - 1}")
                continue
            peer, frame = parts
            try:
                if self.relay:
                    raw = codec.peek(frame, max_size=self.max_frame)
                    if raw.type_name in self.relay:
                        return Request(raw, raw.id, peer, self)
                    del raw
                envelope = codec.decode(frame, max_size=self.max_frame)
            except ProtocolError as error:
                self._protocol_error(str(error))
                continue
            if isinstance(envelope.body, Ping):
                if envelope.id:
                    await self.send_to(peer, Pong(envelope.body.nonce), reply_to=envelope.id)
                continue
            return Request(envelope.body, envelope.id, peer, self)

    def _protocol_error(self, text: str) -> None:
        self.protocol_errors += 1
        self.log.warning("protocol error on mailbox", error=text, mailbox=self.endpoint)


class DealerClient:
    """Request/reply client for one mailbox; see the module docstring.

    Subclasses (``actors.syncsession.peer.Peer``) adjust it through small hooks rather than
    repeating the request/reply machinery: ``reconnect_interval_ms`` (``None`` keeps libzmq's
    default), ``_error_prefix`` and ``_timeout_text`` (the texts of the errors a caller sees),
    ``_log_fields`` (what a protocol-error log line names), ``_before_connect`` (socket setup
    that must precede ``connect``), ``_background`` (coroutines run beside the reply reader
    until ``close``) and ``_close_socket`` (teardown of the socket and anything attached to it).
    """

    reconnect_interval_ms: int | None = None

    def __init__(self, context: zmq.asyncio.Context, endpoint: str, *,
                 max_frame: int = MAX_FRAME_SIZE, log=None):
        self.endpoint = endpoint
        self.max_frame = max_frame
        self.log = log or _default_log
        self.last_heard = 0.0
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._socket = context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.IMMEDIATE, 1)
        if self.reconnect_interval_ms is not None:
            self._socket.setsockopt(zmq.RECONNECT_IVL, self.reconnect_interval_ms)
        self._socket.setsockopt(zmq.MAXMSGSIZE, max_frame + ZMQ_SLACK)
        self._before_connect()
        self._socket.connect(endpoint)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(work) for work in (self._read(), *self._background())]

    # -- hooks ------------------------------------------------------------------------------

    @property
    def _error_prefix(self) -> str:
        """Names the other side at the start of a ``ConnectionError``'s text."""
        return f"mailbox {self.endpoint}"

    def _timeout_text(self, body, timeout: float) -> str:
        return f"{codec.message_name(body)} got no answer within {timeout:g} s from {self.endpoint}"

    def _log_fields(self) -> dict:
        return {"mailbox": self.endpoint}

    def _before_connect(self) -> None:
        """Called once the socket options are set, before ``connect``."""

    def _background(self) -> tuple:
        """Coroutines to run as tasks beside the reply reader; cancelled by ``close``."""
        return ()

    def _close_socket(self) -> None:
        self._socket.close(linger=0)

    # -- requests ---------------------------------------------------------------------------

    async def request(self, body, *, timeout: float):
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            return await within(self._exchange(body, request_id, future), timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(self._timeout_text(body, timeout)) from None
        except zmq.ZMQError as error:
            raise ConnectionError(f"{self._error_prefix}: {error}") from None
        finally:
            self._pending.pop(request_id, None)
            if future.done() and not future.cancelled():
                future.exception()  # a close() raced the send: mark the error as seen

    async def _exchange(self, body, request_id, future):
        await self._socket.send(codec.encode(body, id=request_id))
        reply = await future
        if isinstance(reply, ErrorReply):
            raise RemoteError(reply.code, reply.message)
        return reply

    async def ping(self, *, timeout: float) -> float:
        """Heartbeat: round-trip time in seconds (raises like ``request``)."""
        started = time.monotonic()
        nonce = next(self._ids)
        pong = await self.request(Ping(nonce), timeout=timeout)
        if not isinstance(pong, Pong) or pong.nonce != nonce:
            raise ProtocolError(f"heartbeat answered with {pong!r}")
        return time.monotonic() - started

    async def send_raw(self, frames: list[bytes]) -> None:
        """Send frames as they are (tests use this to send malformed messages)."""
        await self._socket.send_multipart(frames)

    async def _read(self) -> None:
        while True:
            frames = await self._socket.recv_multipart()
            self.last_heard = time.monotonic()
            _received[0] += sum(len(frame) for frame in frames)
            if len(frames) != 1:
                self.log.warning("protocol error on reply", error=f"{len(frames)} frames",
                                 **self._log_fields())
                continue
            try:
                envelope = codec.decode(frames[0], max_size=self.max_frame)
            except ProtocolError as error:
                self.log.warning("protocol error on reply", error=str(error), **self._log_fields())
                continue
            future = self._pending.get(envelope.reply_to)
            if future is not None and not future.done():
                future.set_result(envelope.body)
            # Do not keep the last reply (its raw frame and decoded body: a whole snapshot, a
            # transition's results) alive while waiting for the next one.
            del frames, envelope, future

    def _fail_pending(self, text: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(text))

    async def aclose(self) -> None:
        """Close, letting the background tasks finish their cancellation before the socket goes."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.close()

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._fail_pending(f"{self._error_prefix}: client closed")
        self._close_socket()
