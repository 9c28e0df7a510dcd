"""Phantom-directory reification (docker ignore syntax, reference §4)."""

from __future__ import annotations

import pytest

from mutagen_actors.actors.sync.model import Entry, Kind
from mutagen_actors.actors.sync.phantom import has_phantoms, reify

FILE = Entry.file(b"\x01")
EXE = Entry.file(b"\x02", executable=True)
LINK = Entry.symlink("target")
UNTRACKED = Entry.untracked()
PROBLEM = Entry.problematic("permission denied")
D = Entry.directory
PH = Entry.phantom

# (name, ancestor, alpha, beta, expected alpha, expected beta)
CASES = [
    ("nothing", None, None, None, None, None),
    ("no phantoms: unchanged", D({"f": FILE}), D({"f": FILE}), D({"g": LINK}), D({"f": FILE}), D({"g": LINK})),
    ("empty phantom on one side becomes untracked", None, D({"p": PH()}), D(), D({"p": UNTRACKED}), D()),
    ("phantom holding only ignored content becomes untracked", None,
     D({"p": PH({"x": UNTRACKED})}), None, D({"p": UNTRACKED}), None),
    ("phantom holding a re-included file becomes a directory", None,
     D({"p": PH({"keep": FILE, "x": UNTRACKED})}), None, D({"p": D({"keep": FILE, "x": UNTRACKED})}), None),
    ("a symlink counts as tracked", None, D({"p": PH({"l": LINK})}), None, D({"p": D({"l": LINK})}), None),
    ("a problematic entry counts as tracked", None,
     D({"p": PH({"bad": PROBLEM})}), None, D({"p": D({"bad": PROBLEM})}), None),
    ("tracked content on the other side reifies both", None,
     D({"p": PH()}), D({"p": PH({"keep": FILE})}), D({"p": D()}), D({"p": D({"keep": FILE})})),
    ("ancestor directory keeps an empty phantom a directory", D({"p": D()}),
     D({"p": PH()}), D({"p": PH()}), D({"p": D()}), D({"p": D()})),
    ("ancestor file does not", D({"p": FILE}), D({"p": PH()}), None, D({"p": UNTRACKED}), None),
    ("ancestor untracked does not", D({"p": UNTRACKED}), D({"p": PH()}), None, D({"p": UNTRACKED}), None),
    ("the other side's real directory reifies the phantom", None,
     D({"p": PH()}), D({"p": D()}), D({"p": D()}), D({"p": D()})),
    ("the other side's file does not", None, D({"p": PH()}), D({"p": FILE}), D({"p": UNTRACKED}), D({"p": FILE})),
    ("nested: deep file reifies every phantom on the way", None,
     D({"a": PH({"b": PH({"c": PH({"f": EXE})})})}), None,
     D({"a": D({"b": D({"c": D({"f": EXE})})})}), None),
    ("nested: deep emptiness collapses to the top phantom", None,
     D({"a": PH({"b": PH({"c": PH({"x": UNTRACKED})})})}), None, D({"a": UNTRACKED}), None),
    ("nested: sibling phantoms decided independently", None,
     D({"a": PH({"keep": PH({"f": FILE}), "drop": PH({"x": UNTRACKED})})}), None,
     D({"a": D({"keep": D({"f": FILE}), "drop": UNTRACKED})}), None),
    ("ancestor deep directory keeps the chain", D({"a": D({"b": D()})}),
     D({"a": PH({"b": PH()})}), None, D({"a": D({"b": D()})}), None),
    ("phantom below a real directory", None,
     D({"src": D({"gen": PH({"x": UNTRACKED})})}), D({"src": D()}),
     D({"src": D({"gen": UNTRACKED})}), D({"src": D()})),
    ("phantom root (everything ignored) with a re-included file", None,
     PH({"keep": FILE}), PH(), D({"keep": FILE}), D()),
    ("phantom root with nothing tracked", None, PH({"x": UNTRACKED}), None, UNTRACKED, None),
]


@pytest.mark.parametrize("name, ancestor, alpha, beta, want_alpha, want_beta", CASES, ids=[c[0] for c in CASES])
def test_reify(name, ancestor, alpha, beta, want_alpha, want_beta):
    got_alpha, got_beta = reify(ancestor, alpha, beta)
    assert (got_alpha, got_beta) == (want_alpha, want_beta)
    assert not has_phantoms(got_alpha) and not has_phantoms(got_beta)


def test_snapshots_without_phantoms_are_returned_as_they_are():
    alpha = D({"a": D({"f": FILE}), "g": LINK})
    beta = D({"a": D({"f": EXE})})
    got_alpha, got_beta = reify(alpha, alpha, beta)
    assert got_alpha is alpha and got_beta is beta


def test_inputs_are_not_modified():
    alpha = D({"p": PH({"f": FILE})})
    reify(None, alpha, None)
    assert alpha.contents["p"].kind == Kind.PHANTOM


def test_unchanged_siblings_are_shared():
    big = D({"f": FILE})
    alpha = D({"big": big, "p": PH()})
    got, _ = reify(None, alpha, None)
    assert got.contents["big"] is big
