"""``SupplyTo`` on a local endpoint actor: read a batch like ``Supply`` and send it as
``StageChunks`` straight to the receiving endpoint's mailbox, so file content never passes
through the stager (see ``actors.syncsession.stager``).

``DirectSupplier(endpoint, context, log)``; ``await supplier.answer(message)`` -> ``SuppliedTo``.

Order: requests are read and sent strictly in the order ``answer`` was called (the endpoint
actor starts ``SupplyTo`` requests in arrival order, at most ``Actor.MAX_CONCURRENT`` at once);
one read runs in the worker thread at a time, and a batch's ``StageChunks`` is handed to the
socket before the next batch is read. Only the wait for the receiver's acknowledgement
overlaps: while the receiver writes batch n, batch n+1 is read and sent. Memory: at most the
batches in flight.

Failure rules: a ``receiver`` that is not an ``ipc://`` address is refused (``invalid-argument``);
the receiver's refusal is this request's refusal, with the receiver's code and text; no answer
within ``ACK_TIMEOUT`` is ``timeout``; a receiver that went away (its process ended) is
``disconnected``. Per-file read problems travel in the chunks (``error``), as with ``Supply``.
Connections: one ``ReceiverClient`` per receiver address (at most ``MAX_RECEIVERS``, the least
recently used closed beyond that); ``close()`` closes them.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from mutagen_actors.actors.syncsession.peer import Peer
from mutagen_actors.wire import codec
from mutagen_actors.wire.errors import RemoteError, RequestTimeout
from mutagen_actors.wire.handling import Refused
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages.base import ErrorReply

ACK_TIMEOUT = 60.0  # as the stager's own deadline for a StageChunks
MAX_RECEIVERS = 4


class ReceiverClient(Peer):
    """A ``Peer`` whose ``request`` can report the moment its frame was handed to the socket
    (``expect_sent(body)`` before the request: a future resolved then), so a caller can keep the
    order of its sends without waiting for their replies. The frame is not kept after the send."""

    def __init__(self, context, endpoint: str, log):
        self._sent: dict[int, asyncio.Future] = {}
        super().__init__(context, endpoint, "receiving endpoint", log)

    def expect_sent(self, body) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._sent[id(body)] = future
        return future

    async def _exchange(self, body, request_id, future):
        signal = self._sent.pop(id(body), None)
        try:
            frame = codec.encode(body, id=request_id)
            del body
            await self._socket.send(frame, copy=False)
            del frame
        except BaseException as error:
            if signal is not None and not signal.done():
                signal.set_exception(ConnectionError(f"not sent: {error!r}"))
                signal.exception()
            raise
        if signal is not None and not signal.done():
            signal.set_result(None)
        reply = await future
        if isinstance(reply, ErrorReply):
            raise RemoteError(reply.code, reply.message)
        return reply


def chunk_infos(chunks: list[m.Chunk]) -> list[m.ChunkInfo]:
    """``ChunkInfo.of`` of every chunk; a raw chunk's (every small file's) built directly, its
    output and payload both the length of its data, without the two property calls."""
    info = m.ChunkInfo
    return [info(c.path, c.digest, c.offset, c.size, c.eof, c.error, len(c.data), len(c.data),
                 False) if c.delta is None else info.of(c) for c in chunks]


class DirectSupplier:
    def __init__(self, endpoint, context, log):
        self.endpoint = endpoint
        self.context = context
        self.log = log
        self._order = asyncio.Lock()  # reads and sends in arrival order (FIFO waiters)
        self._clients: OrderedDict[str, ReceiverClient] = OrderedDict()

    def _client(self, address: str) -> ReceiverClient:
        if not address.startswith("ipc://") or len(address) <= len("ipc://"):
            raise Refused("invalid-argument",
                          f"SupplyTo: the receiver must be an ipc:// mailbox, not {address!r}")
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = ReceiverClient(self.context, address, self.log)
            while len(self._clients) > MAX_RECEIVERS:
                _, old = self._clients.popitem(last=False)
                old.close()
        self._clients.move_to_end(address)
        return client

    async def answer(self, message: m.SupplyTo) -> m.SuppliedTo:
        client = self._client(message.receiver)
        if not message.requests:
            return m.SuppliedTo([], m.StageAck(0, []))
        async with self._order:
            chunks = await asyncio.to_thread(self.endpoint.supply, message.requests,
                                             message.max_bytes)
            infos = chunk_infos(chunks)
            body = m.StageChunks(chunks)
            del chunks
            sent = client.expect_sent(body)
            write = asyncio.ensure_future(client.request(body, timeout=ACK_TIMEOUT))
            del body
            # The next batch is read only once this one is on the socket (order kept).
            try:
                await asyncio.wait({sent, write}, return_when=asyncio.FIRST_COMPLETED)
            except BaseException:  # cancelled: the write is this request's, it ends with it
                write.cancel()
                sent.cancel()
                raise
        try:
            ack = await write
        except RemoteError as error:
            raise Refused(error.code, error.message) from None
        except RequestTimeout as error:
            raise Refused("timeout", str(error)) from None
        except ConnectionError as error:
            raise Refused("disconnected", str(error)) from None
        finally:
            if not sent.done():
                sent.cancel()
        if not isinstance(ack, m.StageAck):
            raise Refused("protocol", f"the receiver answered StageChunks with "
                                      f"{type(ack).__name__}")
        return m.SuppliedTo(infos, ack)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
