"""A request/reply client for another actor's mailbox that notices when that actor goes away.

``Peer`` is like ``wire.sockets.DealerClient`` (same framing, same errors) with one addition: a
ZeroMQ socket monitor watches the connection, and when it drops (the peer process died or was
restarted) every request in flight fails at once with ``ConnectionError("... went away")``
instead of waiting for its deadline. Mailbox addresses are stable per session and actor, so the
socket reconnects by itself to the next incarnation; requests sent later reach it.

``ZMQ_IMMEDIATE`` is set: a request is never queued for a peer that is not connected (the send
waits for a connection, bounded by the request's deadline).
"""

from __future__ import annotations

import asyncio
import itertools

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from mutagen_actors.wire import codec
from mutagen_actors.wire.errors import ProtocolError, RemoteError, RequestTimeout
from mutagen_actors.wire.messages.base import ErrorReply
from mutagen_actors.wire.sockets import ZMQ_SLACK
from mutagen_actors.wire.version import MAX_FRAME_SIZE


class Peer:
    def __init__(self, context: zmq.asyncio.Context, endpoint: str, name: str, log):
        self.endpoint = endpoint
        self.name = name
        self.log = log
        self.connected = False
        self.disconnects = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._socket = context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.IMMEDIATE, 1)
        self._socket.setsockopt(zmq.RECONNECT_IVL, 50)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_SIZE + ZMQ_SLACK)
        self._monitor = self._socket.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        self._socket.connect(endpoint)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read()), loop.create_task(self._watch())]

    async def request(self, body, *, timeout: float):
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            return await asyncio.wait_for(self._exchange(body, request_id, future), timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(
                f"{type(body).__name__} got no answer from the {self.name} within {timeout:g} s"
            ) from None
        except zmq.ZMQError as error:
            raise ConnectionError(f"{self.name}: {error}") from None
        finally:
            self._pending.pop(request_id, None)

    async def _exchange(self, body, request_id, future):
        await self._socket.send(codec.encode(body, id=request_id))
        reply = await future
        if isinstance(reply, ErrorReply):
            raise RemoteError(reply.code, reply.message)
        return reply

    async def _read(self) -> None:
        while True:
            frames = await self._socket.recv_multipart()
            if len(frames) != 1:
                continue
            try:
                envelope = codec.decode(frames[0])
            except ProtocolError as error:
                self.log.warning("protocol error on reply", error=str(error), peer=self.name)
                continue
            future = self._pending.get(envelope.reply_to)
            if future is not None and not future.done():
                future.set_result(envelope.body)

    async def _watch(self) -> None:
        while True:
            event = parse_monitor_message(await self._monitor.recv_multipart())
            if event["event"] == zmq.EVENT_CONNECTED:
                self.connected = True
            elif event["event"] == zmq.EVENT_DISCONNECTED:
                self.connected = False
                self.disconnects += 1
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(ConnectionError(f"the {self.name} went away"))

    async def aclose(self) -> None:
        """Close, letting the reader tasks finish their cancellation before the sockets go."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.close()

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"{self.name}: client closed"))
        try:
            self._socket.disable_monitor()
        except zmq.ZMQError:
            pass
        self._monitor.close(linger=0)
        self._socket.close(linger=0)
