"""The remote endpoint actor passes the agent's replies on undecoded (``Link`` with
``raw_reply``, ``RemoteEndpointActor._answer``) except where it must read them: refusals, and a
``ScanReply`` that refers to the last transition (``agent.compaction``), which is expanded.

Real tunnel (a socket pair, the agent end a ``RequestServer``): raw and decoded replies, a
refusal, and a reply whose envelope does not read (every request in flight fails). Table: what
``_answer`` does with each kind of reply. Admission: which header-only requests may overlap.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from mutagen_actors.actors.runtime.admission import is_concurrent
from mutagen_actors.actors.sync.model import Change, Counts, Entry
from mutagen_actors.agent.compaction import DaemonSide
from mutagen_actors.agent.remote_endpoint_actor import RemoteEndpointActor
from mutagen_actors.wire import codec
from mutagen_actors.wire.handling import NotHandled, Refused
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages.agent import AgentEcho, AgentEchoed
from mutagen_actors.wire.messages.base import ErrorReply
from mutagen_actors.wire.tunnel import TunnelClosed
from remote.linked_tunnels import linked_agent

TREE = Entry.directory({f"f{i:03d}": Entry.file(bytes([i]) * 16) for i in range(200)})
SCAN = m.ScanReply("epoch", 1, True, TREE, Counts(1, 200), [], "native")
NEEDS = m.StageNeeds([m.StageItem(f"f{i:03d}", bytes([i]) * 16) for i in range(200)])


async def _agent(message):
    if isinstance(message, m.Scan):
        return SCAN
    if isinstance(message, m.StageBegin):
        return NEEDS
    if isinstance(message, m.FileSizes):
        raise Refused("stale", "the endpoint restarted")
    if isinstance(message, AgentEcho):
        await asyncio.sleep(0.3)
        return AgentEchoed(message.payload)
    raise NotHandled


def _with_link(check):
    async def main():
        async with linked_agent(_agent, compression=True) as (link, _daemon, agent):
            await check(link, agent)

    asyncio.run(main())


def test_replies_come_back_raw_when_asked_and_decoded_otherwise():
    async def check(link, agent):
        raw = await link.request(m.Scan(False), timeout=10, raw_reply=True)
        assert isinstance(raw, codec.RawFrame) and raw.type_name == "ScanReply"
        assert bytes(raw.body) == msgspec.msgpack.encode(SCAN)  # as the agent encoded it
        assert codec.decode(raw.reframed(reply_to=3)).body == SCAN

        relayed = await link.relay(codec.peek(codec.encode(m.StageBegin("e", []), id=9)),
                                   timeout=10, raw_reply=True)
        assert relayed.type_name == "StageNeeds"
        assert codec.decode(relayed.reframed()).body == NEEDS

        assert await link.request(m.Scan(False), timeout=10) == SCAN  # decoded here
        refused = await link.request(m.FileSizes(["a"]), timeout=10, raw_reply=True)
        assert refused == ErrorReply("stale", "the endpoint restarted")  # always decoded

    _with_link(check)


def test_a_reply_whose_envelope_does_not_read_fails_every_request_in_flight():
    async def check(link, agent):
        waiting = asyncio.ensure_future(link.request(AgentEcho(b"x"), timeout=10,
                                                     raw_reply=True))
        await asyncio.sleep(0.05)
        await agent.send(b"e", msgspec.msgpack.encode([999, 1, 1, ["Ok"]]))  # another version
        with pytest.raises(TunnelClosed, match="cannot read.*protocol version mismatch"):
            await waiting

    _with_link(check)


# ------------------------------------------------------------------------- what _answer does


def _actor() -> RemoteEndpointActor:
    actor = RemoteEndpointActor.__new__(RemoteEndpointActor)  # only what _answer uses
    actor.compaction = DaemonSide()
    actor.description = "host"
    return actor


WRITTEN = Entry.directory({"a": Entry.file(b"1" * 16), "b": Entry.file(b"2" * 16)})
REFERS = m.ScanReply("epoch", 2, True, None, Counts(2, 2), [], "native",
                     delta=[Change("d", None, None)], from_transition=[0])
PLAIN = m.ScanReply("epoch", 2, True, None, Counts(1, 0), [], "native",
                    delta=[Change("x", None, Entry.file(b"3" * 16))])


@pytest.mark.parametrize("reply, remembered, outcome", [
    (PLAIN, True, "raw"),               # refers to nothing: passed on, the memory is spent
    (SCAN, False, "raw"),
    (NEEDS, True, "raw"),               # not a scan: the memory is kept
    (REFERS, True, "expanded"),
    (REFERS, False, "refused protocol"),  # a reference nobody here can expand
    (ErrorReply("stale", "old"), False, "refused stale"),
])
def test_answer(reply, remembered, outcome):
    actor = _actor()
    link = object()
    if remembered:
        actor.compaction.written = (link, {"d": WRITTEN})
    given = reply if isinstance(reply, ErrorReply) else codec.peek(codec.encode(reply,
                                                                                reply_to=4))
    if outcome.startswith("refused"):
        with pytest.raises(Refused) as caught:
            actor._answer(link, given)
        assert caught.value.code == outcome.split()[1]
        return
    answered = actor._answer(link, given)
    if outcome == "raw":
        assert answered is given
        spent = isinstance(reply, m.ScanReply)
        assert (actor.compaction.written is None) == (spent or not remembered)
    else:
        assert answered == msgspec.structs.replace(REFERS, delta=[Change("d", None, WRITTEN)],
                                                   from_transition=[])
        assert actor.compaction.written is None


@pytest.mark.parametrize("body, concurrent", [
    (m.StageChunks([]), True),
    (m.Supply([], 1), True),
    (m.Scan(False), False),
    (m.Transition("e", []), False),
    (codec.peek(codec.encode(m.StageChunks([]))), True),
    (codec.peek(codec.encode(m.Supply([], 1))), True),
    (codec.peek(codec.encode(m.StageBegin("e", []))), False),  # runs alone although relayed
    (codec.peek(codec.encode(m.FileSizes([]))), False),
])
def test_only_content_relays_overlap(body, concurrent):
    actor = RemoteEndpointActor
    assert is_concurrent(body, actor.CONCURRENT, actor.MAX_CONCURRENT) is concurrent
