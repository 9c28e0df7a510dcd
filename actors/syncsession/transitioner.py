"""The transitioner actor: applies a cycle's changes on both endpoints in parallel and collects
what each side really has afterwards.

``TransitionStart(alpha_epoch, beta_epoch, alpha, beta)`` starts a job (see ``jobs``) that sends
``Transition`` to each endpoint with changes (both at once) and finishes with each side's
``SideResult``. An endpoint that restarted since its scan refuses (``stale``), one that dies
fails its request at once (``Peer``): the job fails, and the reconciler saves nothing.

Each ``SideResult`` goes back in compact form (``plan.compact_results``): a result that repeats
its requested ``old``/``new`` is sent without them, so the reply of an initial sync is a few
bytes instead of the whole tree again; the reconciler, which holds the requested changes,
expands it (``plan.expand_results``). A ``TransitionReply`` an endpoint sent already compact
(``old_as_asked``/``as_asked``, the agent tunnel's form of the same thing) is passed on so.
Arguments: ``alpha`` and ``beta``: the endpoints' mailbox addresses.
"""

from __future__ import annotations

import asyncio

from mutagen_actors.wire.messages import endpoint as m

from .job_actor import EndpointJobActor, test_setting
from .plan import compact_results

TRANSITION_TIMEOUT = 900.0
# Test-only: seconds a job is held after the endpoints answered and before it answers, so a test
# can act while the cycle says "transitioning" with the changes already on disk (a transition
# of a few thousand placed files takes milliseconds). Read from the daemon's environment (actors
# inherit it); unset in real use.
TEST_HOLD_VARIABLE = "MUTAGEN_ACTORS_TEST_TRANSITION_HOLD"


class TransitionerActor(EndpointJobActor):
    START = m.TransitionStart

    async def _side(self, side: str, epoch: str, changes) -> m.SideResult:
        if not changes:
            return m.SideResult()
        answer = await self.peers[side].request(m.Transition(epoch, changes),
                                                timeout=TRANSITION_TIMEOUT)
        result = answer.result
        if answer.old_as_asked or answer.as_asked:  # already compact (same meaning)
            result.old_as_asked, result.as_asked = answer.old_as_asked, answer.as_asked
            return result
        return compact_results(changes, result)

    async def run_job(self, reply: m.JobReply, start: m.TransitionStart) -> m.JobReply:
        alpha, beta = await asyncio.gather(
            self._side("alpha", start.alpha_epoch, start.alpha),
            self._side("beta", start.beta_epoch, start.beta))
        reply.alpha, reply.beta = alpha, beta
        hold = test_setting(TEST_HOLD_VARIABLE)
        if hold:
            await asyncio.sleep(hold)
        return reply
