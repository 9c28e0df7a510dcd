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

``TransitionStart`` is received header-only (``RELAY``) and read shallowly: each change's
entries stay encoded (``msgspec.Raw``) and go to the endpoint as they came in its
``Transition``, which the endpoint decodes and validates (a remote endpoint actor relays it as it
came too): the tree of an initial sync is decoded once, where it is used, instead of here as
well. A start whose shape does not read is refused (``protocol``). Results are compared with
the requested entries by their encodings (``compact_results``' ``same``).
Arguments: ``alpha`` and ``beta``: the endpoints' mailbox addresses.
"""

from __future__ import annotations

import asyncio

import msgspec

from mutagen_actors.wire.codec import RawFrame
from mutagen_actors.wire.handling import Refused
from mutagen_actors.wire.messages import endpoint as m

from .job_actor import EndpointJobActor, test_setting
from .plan import compact_results

TRANSITION_TIMEOUT = 900.0
# Test-only: seconds a job is held after the endpoints answered and before it answers, so a test
# can act while the cycle says "transitioning" with the changes already on disk (a transition
# of a few thousand placed files takes milliseconds). Read from the daemon's environment (actors
# inherit it); unset in real use.
TEST_HOLD_VARIABLE = "MUTAGEN_ACTORS_TEST_TRANSITION_HOLD"


class RawChange(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """``wire.messages.endpoint``'s ``Change`` with its entries left encoded (nil: None)."""

    path: str
    old: msgspec.Raw
    new: msgspec.Raw


class ShallowTransitionStart(msgspec.Struct, array_like=True, forbid_unknown_fields=True,
                             tag="TransitionStart"):
    """``TransitionStart`` read shallowly (same encoding)."""

    alpha_epoch: str
    beta_epoch: str
    alpha: list[RawChange]
    beta: list[RawChange]


class ShallowTransition(msgspec.Struct, array_like=True, tag="Transition"):
    """``Transition`` whose changes are ``RawChange`` (encodes as a ``Transition`` without
    references)."""

    epoch: str
    changes: list[RawChange]


_start_decoder = msgspec.msgpack.Decoder(ShallowTransitionStart)
_entry_encoder = msgspec.msgpack.Encoder()


def same_encoded(entry, encoded: msgspec.Raw) -> bool:
    """``entry`` (an ``Entry`` or None) encodes to the bytes ``encoded`` holds (pure)."""
    return _entry_encoder.encode(entry) == memoryview(encoded)


def read_start(body) -> ShallowTransitionStart:
    """The shallow start held in an encoded ``TransitionStart`` body; ``Refused("protocol")``
    naming what is wrong when it does not read as one."""
    try:
        return _start_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise Refused("protocol", f"invalid TransitionStart: {error}") from None


class TransitionerActor(EndpointJobActor):
    START = m.TransitionStart
    RELAY = ("TransitionStart",)

    async def handle(self, message):
        if isinstance(message, RawFrame) and message.type_name == "TransitionStart":
            start = read_start(message.body)
            return self.jobs.start(lambda reply: self.run_job(reply, start))
        return await super().handle(message)

    async def _side(self, side: str, epoch: str, changes) -> m.SideResult:
        if not changes:
            return m.SideResult()
        shallow = isinstance(changes[0], RawChange)
        request = ShallowTransition(epoch, changes) if shallow else m.Transition(epoch, changes)
        answer = await self.peers[side].request(request, timeout=TRANSITION_TIMEOUT)
        result = answer.result
        if answer.old_as_asked or answer.as_asked:  # already compact (same meaning)
            result.old_as_asked, result.as_asked = answer.old_as_asked, answer.as_asked
            return result
        return compact_results(changes, result, same_encoded if shallow else None)

    async def run_job(self, reply: m.JobReply, start: m.TransitionStart) -> m.JobReply:
        alpha, beta = await asyncio.gather(
            self._side("alpha", start.alpha_epoch, start.alpha),
            self._side("beta", start.beta_epoch, start.beta))
        reply.alpha, reply.beta = alpha, beta
        hold = test_setting(TEST_HOLD_VARIABLE)
        if hold:
            await asyncio.sleep(hold)
        return reply
