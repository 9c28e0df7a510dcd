"""diff: the minimal change list between two trees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutagen_actors.actors.sync.apply import apply_changes
from mutagen_actors.actors.sync.diff import deletions_only, diff, non_deletions
from mutagen_actors.actors.sync.model import Change, Entry

F = Entry.file(b"\x01" * 16)
F2 = Entry.file(b"\x02" * 16)
FX = Entry.file(F.digest, executable=True)
D0 = Entry.directory()
L = Entry.symlink("f")
L2 = Entry.symlink("g")
U = Entry.untracked()
P = Entry.problematic("unable to open file: permission denied")


def R(**children):
    return Entry.directory(children)


@pytest.mark.parametrize(
    "path,base,target,expected",
    [
        pytest.param("", None, None, [], id="nothing-to-nothing"),
        pytest.param("", F, F, [], id="equal-files"),
        pytest.param("", R(a=R(b=F)), R(a=R(b=F)), [], id="equal-trees"),
        pytest.param("", U, U, [], id="untracked-to-untracked"),
        pytest.param("", None, F, [Change("", None, F)], id="creation"),
        pytest.param("", F, None, [Change("", F, None)], id="deletion"),
        pytest.param("", F, F2, [Change("", F, F2)], id="content-change"),
        pytest.param("", F, FX, [Change("", F, FX)], id="executable-bit"),
        pytest.param("", L, L2, [Change("", L, L2)], id="symlink-target"),
        pytest.param("", F, L, [Change("", F, L)], id="file-to-symlink"),
        pytest.param("", R(f=F), F, [Change("", R(f=F), F)], id="directory-to-file-whole-subtree"),
        pytest.param("", D0, R(f=F), [Change("f", None, F)], id="file-added-in-directory"),
        pytest.param("", R(f=F), D0, [Change("f", F, None)], id="file-removed-from-directory"),
        pytest.param(
            "",
            R(x=R(y=F), z=L),
            R(x=R(y=F2), z=L, w=D0),
            [Change("w", None, D0), Change("x/y", F, F2)],
            id="nested-changes-sorted-depth-first",
        ),
        pytest.param("a/b", R(f=F), R(f=F2), [Change("a/b/f", F, F2)], id="rooted-at-a-path"),
        pytest.param("", R(u=U), R(), [Change("u", U, None)], id="untracked-removal-is-a-change"),
        pytest.param("", P, Entry.problematic("other"), [Change("", P, Entry.problematic("other"))], id="problem-text"),
        pytest.param("", Entry.phantom(), D0, [Change("", Entry.phantom(), D0)], id="phantom-vs-directory"),
    ],
)
def test_diff(path, base, target, expected):
    assert diff(path, base, target) == expected


@pytest.mark.parametrize(
    "changes,only_deletions,creations",
    [
        pytest.param([], True, [], id="empty"),
        pytest.param([Change("a", F, None)], True, [], id="one-deletion"),
        pytest.param([Change("a", F, None), Change("b", None, F)], False, [Change("b", None, F)], id="mixed"),
        pytest.param([Change("a", F, F2)], False, [Change("a", F, F2)], id="modification"),
    ],
)
def test_deletion_helpers(changes, only_deletions, creations):
    assert deletions_only(changes) is only_deletions
    assert non_deletions(changes) == creations


_trees = st.recursive(
    st.one_of(
        st.builds(Entry.file, st.sampled_from([b"1", b"2"]), st.booleans()),
        st.sampled_from([L, L2, U, D0]),
    ),
    lambda children: st.builds(
        Entry.directory, st.dictionaries(st.sampled_from(["a", "b", "c"]), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(base=st.one_of(st.none(), _trees), target=st.one_of(st.none(), _trees))
def test_applying_a_diff_yields_the_target(base, target):
    changes = diff("", base, target)
    assert (changes == []) == (base == target)
    assert apply_changes(base, changes) == target
