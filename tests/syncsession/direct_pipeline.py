"""Test harness for content straight from sender to receiver (``SupplyTo``): the real stager
(``StagerActor.run_job``), the real ``DirectSupplier`` of the sending endpoint actor, and the
receiving ``LocalEndpoint`` behind a real ``wire.sockets.Mailbox`` on an ``ipc://`` address, so
every ``StageChunks`` crosses ZeroMQ from the sender to the receiver exactly as between two
endpoint actors. No actor processes; ``receiving(chunks)`` may damage a batch on its way in or
refuse it (return an ``ErrorReply``), and ``offsets`` records every piece in arrival order."""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace
from typing import Callable, Optional

import zmq.asyncio

from mutagen_actors.agent.serve_endpoint import answer_endpoint
from mutagen_actors.agent.supply_to import DirectSupplier
from mutagen_actors.wire.errors import RemoteError
from mutagen_actors.wire.handling import Refused
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages.base import ErrorReply
from mutagen_actors.wire.sockets import Mailbox

from .pipeline import Log, Pair, WirePeer


class DirectSender(WirePeer):
    """The sending endpoint actor's answers: ``SupplyTo`` through a real ``DirectSupplier``
    (as many at once as the stager asks; ``EndpointActor.MAX_CONCURRENT`` matches it), the rest as ``WirePeer``; its welcome
    says ``supply_to``. ``before_read(n)`` runs before the n-th ``SupplyTo`` is read."""

    def __init__(self, endpoint, side, context):
        super().__init__(endpoint, side)
        self.direct = DirectSupplier(endpoint, context, Log())
        self.before_read: Optional[Callable[[int], None]] = None
        self.supply_tos = 0
        self.most = 0
        self._running = 0

    async def request(self, body, *, timeout: float):
        if isinstance(body, m.EndpointHello):
            welcome = await super().request(body, timeout=timeout)
            return m.EndpointWelcome(welcome.epoch, welcome.watch_state, supply_to=True)
        if not isinstance(body, m.SupplyTo):
            return await super().request(body, timeout=timeout)
        self.supply_tos += 1
        if self.before_read is not None:
            self.before_read(self.supply_tos)
        self._running += 1
        self.most = max(self.most, self._running)
        try:
            return await asyncio.wait_for(self.direct.answer(body), timeout)
        except Refused as refusal:  # as the actor runtime answers it, as the stager sees it
            raise RemoteError(refusal.code, refusal.message) from None
        finally:
            self._running -= 1


class DirectPair(Pair):
    def __init__(self, base: str):
        super().__init__(base)
        self.address = "ipc://" + os.path.join(base, "beta.mailbox")
        self.offsets: list[tuple[str, int]] = []  # every piece the receiver got, in order
        self.receiving: Optional[Callable] = None
        self.stage_chunks = 0

    def start(self) -> None:
        super().start()
        self.context = zmq.asyncio.Context()

        async def setup():
            self.mailbox = Mailbox(self.context, self.address)
            self.mailbox.bind()
            self.server = asyncio.ensure_future(self._serve())
            self.sender = DirectSender(self.alpha, "alpha", self.context)

        self.run(setup())

    async def _serve(self) -> None:
        while True:  # one request at a time, in arrival order, as an endpoint actor
            request = await self.mailbox.receive()
            body = request.body
            if isinstance(body, m.StageChunks):
                self.stage_chunks += 1
                self.offsets.extend((c.path, c.offset) for c in body.chunks)
                if self.receiving is not None:
                    body = self.receiving(body)
                if isinstance(body, ErrorReply):  # the receiver refuses
                    await request.reply(body)
                    continue
            reply = await answer_endpoint(self.beta, "beta", body)
            await request.reply(reply)

    def stop(self) -> None:
        async def teardown():
            self.server.cancel()
            await asyncio.gather(self.server, return_exceptions=True)
            self.sender.direct.close()
            self.mailbox.close()

        try:
            self.run(teardown())
            self.context.term()
        finally:
            super().stop()

    def stager_launch(self):
        # SupplyTo names the receiver's mailbox, which the stager takes from its arguments.
        return SimpleNamespace(args={"alpha": "ipc://unused-alpha", "beta": self.address})
