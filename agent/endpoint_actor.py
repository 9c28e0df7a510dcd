"""The endpoint actor: a ``LocalEndpoint`` behind a mailbox (see ``wire.messages.endpoint``).

Arguments (``ChildSpec.args``): the ``EndpointSettings`` fields, plus ``notify`` (the mailbox
address of the session's reconciler, told ``EndpointChanged`` whenever the watcher reports
changes, and once at start since a new incarnation may have missed changes).

Failure rules: a request carrying another incarnation's ``epoch`` is refused with ``stale``
(the requester's scan came from a previous incarnation); a failed scan answers ``scan-failed``
with the reason; staging and supply failures are reported per file, not as errors. Blocking work
(scans, staging, supplying, transitions) runs in a worker thread so the event loop keeps
answering heartbeats and reading watcher events (one request at a time, so never two threads).
"""

from __future__ import annotations

import asyncio

import zmq

from mutagen_actors.actors.runtime.actor import Actor
from mutagen_actors.actors.sync.scan import ScanError
from mutagen_actors.wire import codec
from mutagen_actors.wire.handling import NotHandled, Refused
from mutagen_actors.wire.messages import endpoint as m

from .endpoint import EndpointSettings, LocalEndpoint
from .memory import trim


class EndpointActor(Actor):
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
        await self.endpoint.stop()
        if self._notify is not None:
            self._notify.close(linger=0)

    def _check_epoch(self, epoch: str) -> None:
        if epoch != self.endpoint.epoch:
            raise Refused("stale", f"the {self.side} endpoint restarted since it was scanned")

    async def handle(self, message):
        endpoint = self.endpoint
        if isinstance(message, m.EndpointHello):
            return m.EndpointWelcome(endpoint.epoch, endpoint.watch_state)
        if isinstance(message, m.Scan):
            try:
                result = await endpoint.scan_async(message.full)
            except ScanError as error:
                raise Refused("scan-failed", str(error)) from None
            changed = (message.have_epoch, message.have_generation) != (endpoint.epoch,
                                                                       endpoint.generation)
            delta = None
            if changed and message.have_epoch == endpoint.epoch:
                delta = endpoint.delta_from(message.have_generation)
            return m.ScanReply(endpoint.epoch, endpoint.generation, changed,
                               result.root if changed and delta is None else None,
                               result.counts, result.problems, endpoint.watch_state, delta)
        if isinstance(message, m.StageBegin):
            self._check_epoch(message.epoch)
            return m.StageNeeds(await asyncio.to_thread(endpoint.needs, message.items))
        if isinstance(message, m.FileSizes):
            return m.Sizes(endpoint.sizes(message.paths))
        if isinstance(message, m.Supply):
            return m.Supplied(await asyncio.to_thread(endpoint.supply, message.requests,
                                                      message.max_bytes))
        if isinstance(message, m.StageChunks):
            completed, problems = await asyncio.to_thread(endpoint.receive, message.chunks)
            return m.StageAck(completed, problems)
        if isinstance(message, m.Transition):
            self._check_epoch(message.epoch)
            result = await endpoint.transition_async(message.changes)
            trim()  # staging buffers and the transition's garbage
            return m.TransitionReply(m.SideResult(result.results, result.problems,
                                                  result.missing_staged))
        raise NotHandled
