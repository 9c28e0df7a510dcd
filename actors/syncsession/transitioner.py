"""The transitioner actor: applies a cycle's changes on both endpoints in parallel and collects
what each side really has afterwards.

``TransitionStart(alpha_epoch, beta_epoch, alpha, beta)`` starts a job (see ``jobs``) that sends
``Transition`` to each endpoint with changes (both at once) and finishes with each side's
``SideResult``. An endpoint that restarted since its scan refuses (``stale``), one that dies
fails its request at once (``Peer``): the job fails, and the reconciler saves nothing.
Arguments: ``alpha`` and ``beta``: the endpoints' mailbox addresses.
"""

from __future__ import annotations

import asyncio

from mutagen_actors.actors.runtime.actor import Actor
from mutagen_actors.wire.handling import NotHandled
from mutagen_actors.wire.messages import endpoint as m

from .jobs import Jobs
from .peer import Peer

TRANSITION_TIMEOUT = 900.0


class TransitionerActor(Actor):
    async def on_start(self) -> None:
        context = self.context.zmq_context
        self.peers = {side: Peer(context, self.context.args[side], f"{side} endpoint", self.log)
                      for side in ("alpha", "beta")}
        self.jobs = Jobs(self.log)

    async def on_stop(self) -> None:
        await self.jobs.stop()
        for peer in self.peers.values():
            await peer.aclose()

    async def handle(self, message):
        if isinstance(message, m.TransitionStart):
            return self.jobs.start(lambda reply: self._apply(reply, message))
        if isinstance(message, m.JobStatus):
            return await self.jobs.status(message.job, message.wait)
        raise NotHandled

    async def _side(self, side: str, epoch: str, changes) -> m.SideResult:
        if not changes:
            return m.SideResult()
        answer = await self.peers[side].request(m.Transition(epoch, changes),
                                                timeout=TRANSITION_TIMEOUT)
        return answer.result

    async def _apply(self, reply: m.JobReply, start: m.TransitionStart) -> m.JobReply:
        alpha, beta = await asyncio.gather(
            self._side("alpha", start.alpha_epoch, start.alpha),
            self._side("beta", start.beta_epoch, start.beta))
        reply.alpha, reply.beta = alpha, beta
        return reply
