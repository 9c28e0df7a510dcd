"""The shell shared by the stager and the transitioner: an actor that works on both endpoints
of its session through ``Peer`` connections and runs one long job at a time (``jobs``).

A subclass names the message that starts its job (``START``) and implements
``run_job(reply, start)``; ``JobStatus`` polls the job. Arguments (``ChildSpec.args``): ``alpha``
and ``beta``, the endpoints' mailbox addresses.

Both are on-demand children (``ChildSpec.on_demand``): they only work during a cycle, so they
hibernate (exit with status 0) after the idle delay without requests, never while a job runs
(``busy``); the reconciler wakes them through the supervisor when a cycle needs them.
"""

from __future__ import annotations

import os

from mutagen_actors.actors.runtime.actor import Actor
from mutagen_actors.wire.handling import NotHandled
from mutagen_actors.wire.messages import endpoint as m

from .jobs import Jobs
from .peer import Peer


def test_setting(variable: str) -> float:
    """A test-only number from the environment (the daemon's, which actors inherit): 0 when
    unset, negative or not a number. Unset in real use."""
    try:
        return max(0.0, float(os.environ.get(variable, "0")))
    except ValueError:
        return 0.0


class EndpointJobActor(Actor):
    START: type = type(None)  # the message type that starts a job

    async def on_start(self) -> None:
        context = self.context.zmq_context
        self.peers = {side: Peer(context, self.context.args[side], f"{side} endpoint", self.log)
                      for side in ("alpha", "beta")}
        self.jobs = Jobs(self.log)

    async def on_stop(self) -> None:
        await self.jobs.stop()
        for peer in self.peers.values():
            await peer.aclose()

    def busy(self) -> bool:
        return self.jobs.running

    async def handle(self, message):
        if isinstance(message, self.START):
            return self.jobs.start(lambda reply: self.run_job(reply, message))
        if isinstance(message, m.JobStatus):
            return await self.jobs.status(message.job, message.wait)
        raise NotHandled

    async def run_job(self, reply: m.JobReply, start) -> m.JobReply:
        raise NotImplementedError
