"""The agent's side of Docker forwarding: dial and listen inside the remote for the daemon.

``ForwardService(send)`` takes ``wire.forward_mux`` frames (``on_frame(payload)``, the tunnel
DATA payloads on route ``forward_mux.ROUTE``) and answers through ``send(payload)`` (an async
callable writing one frame on that route):

- DIAL: dial the endpoint here (``actors.forward.dialers``), answer OPENED and copy bytes both
  ways with half-close, or FAILED with the one-line reason;
- LISTEN: listen here (``actors.forward.listeners``) with the unix-socket options the
  frame carries (``forward_mux.parse_listen_body``: overwrite mode, owner and group resolved
  on this machine, permission mode, reclaiming a stale socket; absent: 0600, ``leave``),
  answer LISTENING with the address or LISTEN_FAILED with the listener's one-line reason
  (``already exists``, ``unknown socket owner``, ``permission denied``…); each accepted
  connection is announced with ACCEPT (odd ids) and copied both ways; UNLISTEN stops it;
- the stream frames (DATA/EOF/CLOSE/ACK) go to the multiplexer (``actors.forward.mux``).

``routed(on_data, service)`` returns a tunnel data handler sending the forwarding route to the
service and everything else to ``on_data``. ``close()`` stops every listener and connection
(the tunnel ended). A frame that does not decode ends nothing but itself (logged).
"""

from __future__ import annotations

import asyncio

from mutagen_actors.wire import forward_mux as fx
from mutagen_actors.wire.errors import ProtocolError


class ForwardService:
    def __init__(self, send, log=None):
        from mutagen_actors.actors.forward.mux import Mux

        self._send = send
        self.log = log
        self.mux = Mux(send, odd=True)
        self._listeners: dict[int, tuple] = {}

    async def on_frame(self, payload) -> None:
        try:
            op, identifier, body = fx.decode(payload)
        except ProtocolError as error:
            if self.log is not None:
                self.log.warning("bad forwarding frame", error=str(error))
            return
        if op == fx.DIAL:
            self.mux.spawn(self._dial(identifier, bytes(body).decode(errors="replace")))
        elif op == fx.LISTEN:
            self.mux.spawn(self._listen(identifier, bytes(body)))
        elif op == fx.UNLISTEN:
            entry = self._listeners.pop(identifier, None)
            if entry is not None:
                entry[0].close()
                entry[1].cancel()
        else:
            self.mux.on_stream_frame(op, identifier, body)

    async def _dial(self, identifier: int, text: str) -> None:
        from mutagen_actors.actors.forward.dialers import make_dialer
        from mutagen_actors.actors.forward.endpoints import ForwardingError, parse_endpoint
        from mutagen_actors.actors.forward.mux import pipe

        stream = self.mux.open(identifier)
        try:
            endpoint = parse_endpoint(text, listening=False, cwd="/")
            reader, writer = await make_dialer(endpoint)()
        except (ForwardingError, OSError) as error:
            stream._gone()
            await self.mux.send(fx.encode(fx.FAILED, identifier, str(error).encode()))
            return
        await self.mux.send(fx.encode(fx.OPENED, identifier))
        await pipe(reader, writer, stream, stream)

    async def _listen(self, identifier: int, body) -> None:
        from mutagen_actors.actors.forward.endpoints import (
            DEFAULT_SOCKET_PERMISSION_MODE,
            ForwardingError,
            parse_endpoint,
            socket_options,
        )
        from mutagen_actors.actors.forward.listeners import open_listener

        try:
            text, given = fx.parse_listen_body(body)
            given = given or {}
            options = socket_options(
                given.get("overwrite_mode") or "leave", given.get("owner", ""),
                given.get("group", ""),
                given.get("permission_mode") or DEFAULT_SOCKET_PERMISSION_MODE)
            endpoint = parse_endpoint(text, listening=True, cwd="/")
            listener = await open_listener(endpoint, options,
                                           reclaim_stale=bool(given.get("reclaim")))
        except (ForwardingError, ProtocolError, OSError) as error:
            await self.mux.send(fx.encode(fx.LISTEN_FAILED, identifier, str(error).encode()))
            return
        task = asyncio.ensure_future(self._accept(identifier, listener))
        self._listeners[identifier] = (listener, task)
        await self.mux.send(fx.encode(fx.LISTENING, identifier, listener.describe().encode()))

    async def _accept(self, identifier: int, listener) -> None:
        from mutagen_actors.actors.forward.mux import pipe
        from mutagen_actors.actors.forward.streams import ListenerClosed

        while True:
            try:
                reader, writer = await listener.accept()
            except ListenerClosed:
                return
            except OSError:
                await asyncio.sleep(0.1)
                continue
            connection = self.mux.new_id()
            stream = self.mux.open(connection)
            await self.mux.send(fx.encode_u32(fx.ACCEPT, connection, identifier))
            self.mux.spawn(pipe(reader, writer, stream, stream))

    def close(self) -> None:
        for listener, task in self._listeners.values():
            listener.close()
            task.cancel()
        self._listeners.clear()
        self.mux.lost("the tunnel ended")


def routed(on_data, service: ForwardService):
    """A tunnel data handler: the forwarding route to ``service``, the rest to ``on_data``."""

    async def handle(route: bytes, payload: bytes):
        if route == fx.ROUTE:
            await service.on_frame(payload)
            return None
        return await on_data(route, payload)

    return handle


async def send_on(link, payload: bytes) -> None:
    """Write one forwarding frame on ``link`` (a ``wire.tunnel.Tunnel``)."""
    await link.send(fx.ROUTE, payload)
