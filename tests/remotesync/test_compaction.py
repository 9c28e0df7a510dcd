"""Compact change metadata on the agent tunnel (``agent.compaction``): each compacted message
expands back to exactly the original, references only what the other end holds, and a
reference that does not fit is refused rather than guessed."""

from __future__ import annotations

import pytest

from mutagen_actors.actors.sync.model import Change, Entry
from mutagen_actors.agent.compaction import (
    AgentSide,
    DaemonSide,
    ReferenceMiss,
    compact_delta,
    compact_olds,
    compact_results,
    compact_transition,
    expand_delta,
    expand_olds,
    expand_results,
    expand_transition,
    fingerprint,
    written_entries,
)
from mutagen_actors.wire import codec
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.actors.sync.model import Counts


def f(n: int) -> Entry:
    return Entry.file(bytes([n]) * 16)


def d(**contents) -> Entry:
    return Entry.directory(contents)


TREE = d(a=f(1), b=f(2), sub=d(c=f(3), e=f(4)))
OTHER = d(a=f(1), b=f(9), sub=d(c=f(3), e=f(4)))
RENAME = [Change("t00", TREE, None), Change("t00-renamed", None, TREE)]


@pytest.mark.parametrize("changes, moved", [
    (RENAME, [(1, 0)]),
    (list(reversed(RENAME)), [(0, 1)]),
    ([Change("t00", TREE, None), Change("x", None, OTHER)], []),  # different content: whole
    ([Change("x", None, TREE)], []),  # nothing deleted to refer to
    ([Change("t00", d(a=f(1)), None), Change("y", None, d(a=f(1)))], []),  # too small to bother
    ([Change("t00", TREE, OTHER), Change("moved", None, TREE)], [(1, 0)]),  # swap + move
    ([], []),
])
def test_transition_moves(changes, moved):
    compacted, references = compact_transition(changes)
    assert references == moved
    for index, _ in moved:
        assert compacted[index].new is None
    assert expand_transition(compacted, references) == changes


@pytest.mark.parametrize("compacted, moved", [
    ([Change("a", TREE, None), Change("b", None, None)], [(1, 5)]),
    ([Change("a", None, None), Change("b", None, None)], [(1, 0)]),  # source has no old
    ([Change("a", TREE, None), Change("b", None, TREE)], [(1, 0)]),  # target not elided
])
def test_transition_references_that_do_not_fit_are_refused(compacted, moved):
    with pytest.raises(ValueError):
        expand_transition(compacted, moved)


FAILED = Change("t00", TREE, d(a=f(1)))  # the deletion left a file behind (problem reported)


@pytest.mark.parametrize("changes, results, old_as_asked, as_asked", [
    (RENAME, RENAME, True, [1]),  # deletion: new None stays None; creation: as asked
    (RENAME, [FAILED, RENAME[1]], True, [1]),
    (RENAME, [RENAME[1]], True, [0]),  # a refused path is left out of the results
    ([Change("x", None, TREE), Change("x", None, OTHER)], [Change("x", None, TREE)], False, []),
    (RENAME, [Change("t00", OTHER, None)], False, []),  # old differs: sent whole
])
def test_transition_results(changes, results, old_as_asked, as_asked):
    compacted, old_flag, positions = compact_results(changes, results)
    assert (old_flag, positions) == (old_as_asked, as_asked)
    assert expand_results(changes, compacted, old_flag, positions) == results
    if old_flag:
        assert all(result.old is None for result in compacted)


def test_result_references_that_do_not_fit_are_refused():
    with pytest.raises(ValueError):
        expand_results(RENAME, [Change("elsewhere", None, None)], True, [])
    with pytest.raises(ValueError):
        expand_results(RENAME, [Change("t00-renamed", None, None)], True, [3])
    with pytest.raises(ValueError):
        expand_results(RENAME, [Change("t00", None, None)], True, [0])  # nothing was asked there


@pytest.mark.parametrize("delta, written, references", [
    ([Change("t00", None, None), Change("t00-renamed", None, TREE)], {"t00-renamed": TREE}, [1]),
    ([Change("t00-renamed", None, OTHER)], {"t00-renamed": TREE}, []),  # changed since: whole
    ([Change("t00-renamed", None, TREE)], {}, []),
    ([Change("t00-renamed", None, TREE)], None, []),
    (None, {"t00-renamed": TREE}, []),
])
def test_scan_deltas(delta, written, references):
    compacted, positions = compact_delta(delta, written)
    assert positions == references
    assert expand_delta(compacted, positions, written) == delta


def test_delta_references_without_the_transition_are_refused():
    compacted, positions = compact_delta([Change("t00-renamed", None, TREE)], {"t00-renamed": TREE})
    with pytest.raises(ValueError):
        expand_delta(compacted, positions, None)
    with pytest.raises(ValueError):
        expand_delta(compacted, positions, {"other": TREE})


def _over_the_wire(message):
    return codec.decode(codec.encode(message)).body


def test_a_rename_round_trip_through_both_halves_is_exact_and_small():
    """Daemon -> agent Transition, agent -> daemon TransitionReply and the next ScanReply, as
    the tunnel carries them: each arrives whole, and the compacted frames are much smaller."""
    big = d(**{f"f{i:05d}": f(i % 250) for i in range(2000)})
    changes = [Change("t00", big, None), Change("t00-renamed", None, big)]
    daemon, agent, link = DaemonSide(), AgentSide(), object()
    scanned = d(t00=big, other=f(1))  # the agent's last scan

    request = m.Transition("epoch", changes)
    sent = daemon.outgoing(request)
    received = agent.incoming(_over_the_wire(sent), scanned)
    assert received == request
    assert len(codec.encode(sent)) < 300
    with pytest.raises(ReferenceMiss):  # the disk moved on since: the daemon re-sends whole
        agent.incoming(_over_the_wire(sent), d(t00=d(x=f(1), y=f(2)), other=f(1)))

    results = [Change("t00", big, None), Change("t00-renamed", None, big)]
    reply = m.TransitionReply(m.SideResult(results, [], False))
    answered = agent.outgoing(received, reply)
    assert len(codec.encode(answered)) < 200
    assert daemon.incoming(request, _over_the_wire(answered), link) == reply

    scan = m.ScanReply("epoch", 2, True, None, Counts(), [], "watching",
                       [Change("t00", None, None), Change("t00-renamed", None, big)])
    answered = agent.outgoing(m.Scan(False, 1, "epoch"), scan)
    assert len(codec.encode(answered)) < 300
    assert daemon.incoming(m.Scan(False, 1, "epoch"), _over_the_wire(answered), link) == scan

    # the memory is used once: the next scan reply is sent whole and expands to itself
    assert agent.outgoing(m.Scan(False, 2, "epoch"), scan) == scan
    assert daemon.incoming(m.Scan(False, 2, "epoch"), scan, link) == scan


def test_a_new_link_never_inherits_written_entries():
    big = d(**{f"f{i}": f(i) for i in range(10)})
    request = m.Transition("epoch", [Change("n", None, big)])
    daemon, agent = DaemonSide(), AgentSide()
    assert agent.incoming(daemon.outgoing(request)) == request  # nothing to refer to
    reply = agent.outgoing(request, m.TransitionReply(m.SideResult([Change("n", None, big)])))
    daemon.incoming(request, reply, "old link")
    scan = agent.outgoing(m.Scan(False), m.ScanReply("e", 2, True, None, Counts(), [], "",
                                                     [Change("n", None, big)]))
    assert scan.from_transition == [0]
    with pytest.raises(ValueError):
        daemon.incoming(m.Scan(False), scan, "new link")


def test_written_entries():
    assert written_entries(RENAME) == {"t00-renamed": TREE}


SCANNED = d(t00=TREE, keep=f(7), nested=d(inner=OTHER))


@pytest.mark.parametrize("changes, indices", [
    (RENAME, [0]),
    ([Change("nested/inner", OTHER, None), Change("keep", f(7), None)], [0]),  # a file: whole
    ([Change("x", None, TREE)], []),
])
def test_olds_refer_to_the_last_scan(changes, indices):
    compacted, seen = compact_olds(changes)
    assert [index for index, _ in seen] == indices
    assert all(compacted[index].old is None for index in indices)
    assert expand_olds(compacted, seen, SCANNED) == changes


@pytest.mark.parametrize("snapshot", [
    d(t00=OTHER),  # changed since the scan the daemon used
    d(),  # gone
    None,  # no scan
    d(t00=f(1)),  # a file now
])
def test_an_old_that_is_not_what_the_scan_saw_is_a_reference_miss(snapshot):
    compacted, seen = compact_olds(RENAME)
    with pytest.raises(ReferenceMiss):
        expand_olds(compacted, seen, snapshot)


def test_old_references_that_do_not_fit_are_refused():
    with pytest.raises(ValueError):
        expand_olds([Change("t00", None, None)], [(3, fingerprint(TREE))], SCANNED)
    with pytest.raises(ValueError):
        expand_olds([Change("t00", TREE, None)], [(0, fingerprint(TREE))], SCANNED)


def test_fingerprints_do_not_depend_on_the_order_names_were_added():
    """The daemon's copy of a scan is rebuilt from deltas (its dicts in another order than the
    agent's): equal entries must still match."""
    one = d(a=f(1), b=d(x=f(2), y=f(3)))
    other = d(b=d(y=f(3), x=f(2)), a=f(1))
    assert one == other and fingerprint(one) == fingerprint(other)
    assert fingerprint(one) != fingerprint(d(a=f(1), b=d(x=f(2), y=f(4))))
