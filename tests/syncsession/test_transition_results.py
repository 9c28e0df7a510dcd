"""The transition's results on their way back (plan.compact_results / expand_results), the
requested entries checked while the transition runs (plan.checked_requests / next_ancestor) and
the transitioner's shallow read of its start (transitioner.read_start / same_encoded), as
tables."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mutagen_actors.actors.sync.model import Change, Entry, Kind, Problem
from mutagen_actors.actors.syncsession.peer import Peer
from mutagen_actors.actors.syncsession.plan import (checked_requests, compact_results,
                                                    expand_results, next_ancestor)
from mutagen_actors.actors.syncsession.transitioner import (ShallowTransition, read_start,
                                                            same_encoded)
from mutagen_actors.wire import codec
from mutagen_actors.wire.handling import Refused
from mutagen_actors.wire.messages.endpoint import (JobReply, Scan, SideResult, Transition,
                                                   TransitionStart)

A, B = b"a" * 16, b"b" * 16
FILE_A, FILE_B = Entry.file(A), Entry.file(B)
D = Entry.directory
TREE = D({"x": FILE_A, "y": D({"z": FILE_B})})
UNTRACKED = Entry(Kind.UNTRACKED)
MISSING = Problem("g", "staged file missing")

CHANGES = [Change("d", None, TREE), Change("f", FILE_A, FILE_B), Change("gone", FILE_A, None),
           Change("g", None, FILE_A)]


def fresh(changes: list[Change]) -> list[Change]:
    """Equal results that are other objects (as decoded from the endpoint's reply)."""
    return [codec.decode(codec.encode(JobReply(1, True, beta=SideResult(changes)))).body.beta
            .results[i] for i in range(len(changes))]


@pytest.mark.parametrize("results, problems, old_as_asked, as_asked, sent", [
    pytest.param(CHANGES[:3], [], True, [0, 1],
                 [Change("d", None, None), Change("f", None, None), Change("gone", None, None)],
                 id="all as requested"),
    pytest.param([CHANGES[0], Change("f", FILE_A, FILE_A), CHANGES[2]], [], True, [0],
                 [Change("d", None, None), Change("f", None, FILE_A), Change("gone", None, None)],
                 id="one differs: sent whole"),
    pytest.param([CHANGES[0], Change("f", FILE_B, FILE_B)], [Problem("f", "modification detected")],
                 False, [0, 1], [Change("d", None, None), Change("f", FILE_B, None)],
                 id="an old that differs: olds sent whole"),
    pytest.param([CHANGES[0]], [MISSING], True, [0], [Change("d", None, None)],
                 id="a change left out (missing staged): fewer results"),
    pytest.param([Change("d", None, D({"x": FILE_A}))], [], True, [],
                 [Change("d", None, D({"x": FILE_A}))], id="part of a tree: sent whole"),
])
def test_compact_then_expand(results, problems, old_as_asked, as_asked, sent):
    side = SideResult(fresh(results), problems, bool(problems))
    compact = compact_results(CHANGES, side)
    assert (compact.old_as_asked, compact.as_asked, compact.results) == (old_as_asked, as_asked,
                                                                         sent)
    assert (compact.problems, compact.missing_staged) == (side.problems, side.missing_staged)
    wire = codec.decode(codec.encode(JobReply(1, True, beta=compact))).body.beta
    expanded = expand_results(CHANGES, wire)
    assert expanded == results
    asked = {change.path: change for change in CHANGES}
    for position in as_asked:  # the requester's own objects, not copies
        assert expanded[position].new is asked[expanded[position].path].new


@pytest.mark.parametrize("changes, side", [
    pytest.param(CHANGES, SideResult(), id="no results"),
    pytest.param(CHANGES, SideResult([Change("elsewhere", None, FILE_A)]), id="not requested"),
    pytest.param(CHANGES + [Change("d", TREE, None)], SideResult(CHANGES[:1]),
                 id="request repeats a path"),
    pytest.param(CHANGES, SideResult([Change("d", FILE_B, D())]), id="nothing as requested"),
])
def test_compact_leaves_alone(changes, side):
    assert compact_results(changes, side) is side


@pytest.mark.parametrize("side, text", [
    pytest.param(SideResult([Change("elsewhere", None, None)], old_as_asked=True),
                 "'elsewhere', which was not requested", id="a change not requested"),
    pytest.param(SideResult([Change(c.path, None, None) for c in CHANGES + CHANGES[:1]],
                            old_as_asked=True), "5 compact transition results for 4",
                 id="more results than changes"),
    pytest.param(SideResult([Change("d", None, None), Change("d", None, None)], as_asked=[0]),
                 "two compact transition results for 'd'", id="a path twice"),
    pytest.param(SideResult([Change("d", None, None)], as_asked=[1]), "out of range",
                 id="reference out of range"),
    pytest.param(SideResult([Change("d", None, None)], as_asked=[-1]), "out of range",
                 id="negative reference"),
    pytest.param(SideResult([Change("d", None, None)], as_asked=[0, 0]), "twice",
                 id="repeated reference"),
    pytest.param(SideResult([Change("d", None, TREE)], as_asked=[0]), "carries its own entry",
                 id="reference to a result with an entry"),
    pytest.param(SideResult([Change("gone", None, None)], as_asked=[0]),
                 "requested nothing there", id="reference to a deletion"),
    pytest.param(SideResult([Change("d", FILE_A, None)], old_as_asked=True, as_asked=[0]),
                 "carries an old entry", id="old entry although as requested"),
])
def test_expand_refuses_what_does_not_fit(side, text):
    with pytest.raises(ValueError, match=text):
        expand_results(CHANGES, side)


def test_expand_refuses_compact_results_for_a_request_repeating_a_path():
    with pytest.raises(ValueError, match="repeat a path"):
        expand_results(CHANGES + [Change("d", TREE, None)],
                       SideResult([Change("d", None, None)], as_asked=[0]))


def test_expand_passes_full_results_as_they_are():
    side = SideResult(fresh(CHANGES[:2]))
    assert expand_results(CHANGES, side) is side.results


@pytest.mark.parametrize("changes, checked_paths", [
    pytest.param(CHANGES, ["d", "f", "g"], id="valid entries; a deletion has none"),
    pytest.param([Change("..", None, FILE_A)], [], id="bad name"),
    pytest.param([Change("d", None, D({"x": Entry.file(b"")}))], [], id="file without digest"),
    pytest.param([Change("u", None, UNTRACKED)], [], id="nothing synchronizable"),
    pytest.param([Change("", None, D({"x": FILE_A}))], [""], id="the root"),
])
def test_checked_requests(changes, checked_paths):
    checked = checked_requests(changes)
    assert sorted(checked) == checked_paths
    for change in changes:
        if change.path in checked:
            assert checked[change.path][0] is change.new


def test_checked_request_keeps_only_the_synchronizable_part():
    mixed = D({"x": FILE_A, "ignored": UNTRACKED})
    checked = checked_requests([Change("d", None, mixed)])
    assert checked["d"] == (mixed, D({"x": FILE_A}))


@pytest.mark.parametrize("ancestor, ancestor_changes, results, expected", [
    pytest.param(None, [Change("", None, D())], [Change("d", None, TREE)], D({"d": TREE}),
                 id="initial: root from the ancestor changes, then the results"),
    pytest.param(D({"f": FILE_A}), [], [Change("f", FILE_A, FILE_B)], D({"f": FILE_B}),
                 id="an edit"),
    pytest.param(D({"gone": FILE_A}), [], [Change("gone", FILE_A, None)], D(),
                 id="a deletion"),
])
def test_next_ancestor_with_checked_requests(ancestor, ancestor_changes, results, expected):
    checked = checked_requests(results)
    updated = next_ancestor(ancestor, ancestor_changes, [], results, checked)
    assert updated == expected == next_ancestor(ancestor, ancestor_changes, [], results)
    for result in results:
        if result.new is not None:  # the checked objects themselves are put in
            assert updated.contents[result.path] is checked[result.path][1]


def test_next_ancestor_checks_a_result_that_is_not_the_checked_object():
    """A result equal to nothing checked (the endpoint wrote something else) is validated as
    before: an invalid one fails the cycle."""
    checked = checked_requests([Change("d", None, TREE)])
    with pytest.raises(ValueError, match="file without digest"):
        next_ancestor(D(), [], [], [Change("d", None, D({"x": Entry.file(b"")}))], checked)


def test_next_ancestor_without_an_ancestor_checks_every_entry_put_in():
    with pytest.raises(ValueError, match="bad entry name"):
        next_ancestor(None, [Change("", None, D({"..": FILE_A}))], [], [])
    with pytest.raises(ValueError, match="file without digest"):
        next_ancestor(None, [Change("", None, D())], [],
                      [Change("d", None, D({"x": Entry.file(b"")}))])


# ---------------------------------------------------------------- the transitioner's shallow start


def shallow_start(alpha: list[Change], beta: list[Change]):
    frame = codec.encode(TransitionStart("ea", "eb", alpha, beta), id=7)
    return read_start(codec.peek(frame).body)


def test_a_shallow_start_goes_on_as_the_transition_it_holds():
    start = shallow_start(CHANGES[:1], CHANGES)
    assert (start.alpha_epoch, start.beta_epoch) == ("ea", "eb")
    sent = codec.encode(ShallowTransition(start.beta_epoch, start.beta), id=9)
    assert codec.decode(sent).body == Transition("eb", CHANGES)  # as the endpoint reads it


@pytest.mark.parametrize("body, text", [
    pytest.param(b"\x92\xafTransitionStart\xa1e", "invalid TransitionStart",
                 id="too few fields"),
    pytest.param(b"\x95\xafTransitionStart\xa1a\xa1b\x91\x93\x01\xc0\xc0\x90",
                 "invalid TransitionStart", id="a path that is not a string"),
    pytest.param(b"\x95\xafTransitionStart\xa1a\xa1b\x90", "invalid TransitionStart",
                 id="truncated"),
])
def test_a_start_that_does_not_read_is_refused(body, text):
    with pytest.raises(Refused, match=text) as refused:
        read_start(body)
    assert refused.value.code == "protocol"


@pytest.mark.parametrize("actual, requested, same", [
    pytest.param(TREE, TREE, True, id="equal"),
    pytest.param(None, None, True, id="both nothing"),
    pytest.param(FILE_A, FILE_B, False, id="other file"),
    pytest.param(None, FILE_A, False, id="nothing there"),
    pytest.param(D({"x": FILE_A}), TREE, False, id="part of the tree"),
])
def test_same_encoded(actual, requested, same):
    (change,) = shallow_start([], [Change("p", None, requested)]).beta
    assert same_encoded(actual, change.new) is same


def test_compact_against_a_shallow_start_then_expand_against_the_request():
    start = shallow_start([], CHANGES)
    side = SideResult(fresh(CHANGES[:3]), [MISSING], True)
    compact = compact_results(start.beta, side, same_encoded)
    assert (compact.old_as_asked, compact.as_asked) == (True, [0, 1])
    assert expand_results(CHANGES, compact) == CHANGES[:3]


@pytest.mark.parametrize("body, name", [
    pytest.param(ShallowTransition("epoch", []), "Transition", id="shallow stand-in: its tag"),
    pytest.param(Transition("epoch", []), "Transition", id="a message"),
    pytest.param(Scan(True, 0, "", False), "Scan", id="another message"),
    pytest.param(object(), "object", id="untagged: its class"),
])
def test_a_timeout_names_the_message_as_on_the_wire(body, name):
    assert codec.message_name(body) == name
    text = Peer._timeout_text(SimpleNamespace(name="beta endpoint"), body, 900.0)
    assert text == f"{name} got no answer from the beta endpoint within 900 s"
