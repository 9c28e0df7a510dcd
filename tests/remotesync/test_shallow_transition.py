"""A ``Transition`` that nothing would compact is relayed by the remote endpoint actor without
decoding its entries (``agent.compaction.shallow_changes``): what the requester finally gets
(the expanded ``TransitionReply``, then the next ``ScanReply``'s delta) must be byte for byte
what the decoding path gives. Pure: table of transitions (which ones go shallow) and the
round trip through both halves of the compaction."""

from __future__ import annotations

import msgspec
import pytest

from mutagen_actors.actors.sync.model import Change, Counts, Entry
from mutagen_actors.agent.compaction import AgentSide, DaemonSide, shallow_changes
from mutagen_actors.wire import codec
from mutagen_actors.wire.messages import endpoint as m

FILE = Entry.file(b"\x01" * 16)
DIR = Entry.directory({f"f{i}": Entry.file(bytes([i]) * 16) for i in range(30)})
SMALL = Entry.directory({"only": FILE})


def _body(transition: m.Transition) -> memoryview:
    return codec.peek(codec.encode(transition, id=3)).body


@pytest.mark.parametrize("changes, moved, shallow", [
    ([Change("t", None, DIR)], [], True),                        # the initial sync's shape
    ([Change("a", FILE, Entry.file(b"\x02" * 16)), Change("b", None, None)], [], True),
    ([Change("s", SMALL, None)], [], True),                      # an old too small to refer to
    ([Change("gone", DIR, None)], [], False),                    # an old worth a reference
    ([Change("x", None, DIR), Change("y", DIR, None)], [], False),  # a move
    ([Change("t", None, DIR)], [(0, 0)], False),                 # references already there
    ([], [], True),
])
def test_which_transitions_go_undecoded(changes, moved, shallow):
    found = shallow_changes(_body(m.Transition("e", changes, moved=moved)))
    assert (found is not None) == shallow
    if shallow:
        assert [change.path for change in found] == [change.path for change in changes]
        assert [c.old is None for c in found] == [c.old is None for c in changes]
        assert [c.new is None for c in found] == [c.new is None for c in changes]


@pytest.mark.parametrize("body", [b"\x93\xa5Other\x01\x02", b"\xc1", b"\x92\xaaTransition\x01"])
def test_what_is_not_a_transition_is_left_to_the_full_decode(body):
    assert shallow_changes(body) is None


def test_the_requester_gets_the_same_bytes_as_through_the_decoding_path():
    new_tree = Entry.directory({"d1": DIR, "d2": SMALL})
    request = m.Transition("e", [Change("t", None, new_tree), Change("f", FILE, None),
                                 Change("g", None, FILE)])
    frame = codec.encode(request, id=1)

    # the agent: what it wrote (every change as asked), its compacted reply, then its next scan
    agent = AgentSide()
    received = agent.incoming(codec.decode(frame).body)
    results = [Change(c.path, c.old, c.new) for c in received.changes]
    reply = codec.decode(codec.encode(agent.outgoing(received, m.TransitionReply(
        m.SideResult(results=results))), reply_to=1)).body
    scan = m.ScanReply("e", 2, True, None, Counts(), [], "native",
                       delta=[Change("t", None, new_tree)])
    scan_reply = codec.decode(codec.encode(agent.outgoing(m.Scan(False), scan))).body
    assert reply.as_asked and scan_reply.from_transition  # references were used

    decoding, shallow = DaemonSide(), DaemonSide()
    whole = decoding.incoming(request, reply, "link")
    changes = shallow_changes(codec.peek(frame).body)
    assert changes is not None
    shallow.relayed()
    relayed = shallow.incoming(m.Transition("", changes), reply, "link")
    assert codec.encode(relayed, reply_to=8) == codec.encode(whole, reply_to=8)
    assert codec.decode(codec.encode(relayed)).body.result.results == results

    after_whole = decoding.incoming(None, scan_reply, "link")
    after_relayed = shallow.incoming(None, scan_reply, "link")
    assert codec.encode(after_relayed) == codec.encode(after_whole)
    assert codec.decode(codec.encode(after_relayed)).body == scan
    assert msgspec.msgpack.decode(codec.encode(after_relayed)) is not None
