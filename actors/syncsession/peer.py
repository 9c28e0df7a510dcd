"""A request/reply client for another actor's mailbox that notices when that actor goes away.

``Peer`` is ``wire.sockets.DealerClient`` (same framing, same errors, same request/reply code)
with one addition: a ZeroMQ socket monitor watches the connection, and when it drops (the peer
process died or was restarted) every request in flight fails at once with
``ConnectionError("the <name> went away")`` instead of waiting for its deadline. Mailbox
addresses are stable per session and actor, so the socket reconnects by itself (every 50 ms) to
the next incarnation; requests sent later reach it. Error texts name the peer by ``name``.

``ZMQ_IMMEDIATE`` is set: a request is never queued for a peer that is not connected (the send
waits for a connection, bounded by the request's deadline).
"""

from __future__ import annotations

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from mutagen_actors.wire import codec
from mutagen_actors.wire.sockets import DealerClient


class Peer(DealerClient):
    reconnect_interval_ms = 50

    def __init__(self, context: zmq.asyncio.Context, endpoint: str, name: str, log):
        self.name = name
        self.connected = False
        self.disconnects = 0
        super().__init__(context, endpoint, log=log)

    @property
    def _error_prefix(self) -> str:
        return self.name

    def _timeout_text(self, body, timeout: float) -> str:
        return f"{codec.message_name(body)} got no answer from the {self.name} within {timeout:g} s"

    def _log_fields(self) -> dict:
        return {"peer": self.name}

    def _before_connect(self) -> None:
        self._monitor = self._socket.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)

    def _background(self) -> tuple:
        return (self._watch(),)

    async def _watch(self) -> None:
        while True:
            event = parse_monitor_message(await self._monitor.recv_multipart())
            if event["event"] == zmq.EVENT_CONNECTED:
                self.connected = True
            elif event["event"] == zmq.EVENT_DISCONNECTED:
                self.connected = False
                self.disconnects += 1
                self._fail_pending(f"the {self.name} went away")

    def _close_socket(self) -> None:
        try:
            self._socket.disable_monitor()
        except zmq.ZMQError:
            pass
        self._monitor.close(linger=0)
        super()._close_socket()
