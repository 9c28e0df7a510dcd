"""The endpoint actor: a ``LocalEndpoint`` behind a mailbox (see ``wire.messages.endpoint``).

Arguments (``ChildSpec.args``): the ``EndpointSettings`` fields, plus ``notify`` (the mailbox
address of the session's reconciler, told ``EndpointChanged`` whenever the watcher reports
changes, and once at start since a new incarnation may have missed changes).

Failure rules: a request carrying another incarnation's ``epoch`` is refused with ``stale``
(the requester's scan came from a previous incarnation); a failed scan answers ``scan-failed``
with the reason; staging and supply failures are reported per file, not as errors. Blocking work
(scans, staging, supplying, transitions) runs in a worker thread so the event loop keeps
answering heartbeats and reading watcher events (never two threads at once).

``SupplyTo`` (``agent.supply_to``): this actor sends the content to the receiver itself and
says so in its ``EndpointWelcome`` (``supply_to``). Two ``SupplyTo`` may be handled at once
(``CONCURRENT``): one waits for the receiver's acknowledgement while the next is read and sent;
reads and sends stay in arrival order, one read at a time. Every other request runs alone.
"""

from __future__ import annotations

import zmq

from mutagen_actors.actors.runtime.actor import Actor
from mutagen_actors.wire import codec
from mutagen_actors.wire.messages import endpoint as m

from .endpoint import EndpointSettings, LocalEndpoint
from .serve_endpoint import answer_endpoint
from .supply_to import DirectSupplier


class EndpointActor(Actor):
    CONCURRENT = (m.SupplyTo,)
    MAX_CONCURRENT = 6  # = the stager's WRITES_IN_FLIGHT (a smaller bound would cap it)

    async def on_start(self) -> None:
        args = self.context.args
        settings = EndpointSettings.from_args(args)
        self.side = settings.side
        self.log = self.log.bind(side=self.side)
        self._notify = None
        if args.get("notify"):
            socket = self.context.zmq_context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.SNDHWM, 16)
            socket.connect(args["notify"])
            self._notify = socket
        self.endpoint = LocalEndpoint(settings, on_change=self._changed, log=self.log)
        await self.endpoint.start()
        self.direct = DirectSupplier(self.endpoint, self.context.zmq_context, self.log)
        if settings.watch_mode.value != "no-watch":
            self._changed()  # a new incarnation may have missed changes

    def _changed(self) -> None:
        if self._notify is None:
            return
        try:
            self._notify.send(codec.encode(m.EndpointChanged(self.side)), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the reconciler is not there: it scans everything when it (re)starts

    async def on_stop(self) -> None:
        self.direct.close()
        await self.endpoint.stop()
        if self._notify is not None:
            self._notify.close(linger=0)

    async def handle(self, message):
        if isinstance(message, m.SupplyTo):
            return await self.direct.answer(message)
        reply = await answer_endpoint(self.endpoint, self.side, message)
        if isinstance(reply, m.EndpointWelcome):
            reply = m.EndpointWelcome(reply.epoch, reply.watch_state, supply_to=True)
        return reply
