"""Properties of reconcile over small random trees (hypothesis).

Trees come from a small alphabet (names a/b/c, two digests, two symlink targets, executable bit)
so that random sides often agree, partly agree or collide. Sides are drawn as variants of the
ancestor (each node kept, dropped, replaced or recursed into), which makes the interesting
three-way situations common.
"""

from __future__ import annotations

import functools
from typing import Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mutagen_actors.actors.sync.apply import apply_changes, validate_ancestor
from mutagen_actors.actors.sync.diff import diff, non_deletions
from mutagen_actors.actors.sync.model import Change, Entry, Kind, lookup
from mutagen_actors.actors.sync.reconcile import is_synchronizable, reconcile, synchronizable
from mutagen_actors.actors.sync.settings import Mode

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = st.sampled_from(["a", "b", "c"])
FILES = st.builds(Entry.file, st.sampled_from([b"\x01" * 8, b"\x02" * 8]), st.booleans())
LINKS = st.sampled_from([Entry.symlink("a"), Entry.symlink("b/c")])
UNTRACKED = st.just(Entry.untracked())
PROBLEMATIC = st.just(Entry.problematic("unable to open file: permission denied"))


@functools.lru_cache(maxsize=None)
def trees(untracked: bool = False, problematic: bool = False) -> st.SearchStrategy[Entry]:
    leaves = [FILES, LINKS, st.just(Entry.directory())]
    if untracked:
        leaves.append(UNTRACKED)
    if problematic:
        leaves.append(PROBLEMATIC)
    return st.recursive(
        st.one_of(leaves),
        lambda children: st.builds(Entry.directory, st.dictionaries(NAMES, children, max_size=3)),
        max_leaves=8,
    )


@functools.lru_cache(maxsize=None)
def roots(untracked: bool = False, problematic: bool = False) -> st.SearchStrategy[Optional[Entry]]:
    tree = trees(untracked, problematic)
    directory_root = st.builds(Entry.directory, st.dictionaries(NAMES, tree, max_size=3))
    return st.one_of(directory_root, directory_root, directory_root, tree, st.none())


def _variant(draw, entry: Optional[Entry], untracked: bool, problematic: bool) -> Optional[Entry]:
    fresh = trees(untracked, problematic)
    if entry is None:
        return draw(fresh) if draw(st.integers(0, 2)) == 0 else None
    is_directory = entry.kind == Kind.DIRECTORY
    choice = draw(st.integers(0, 6 if is_directory else 3))
    if choice <= 1:
        return entry  # kept as it was
    if choice == 2:
        return None  # deleted
    if choice == 3:
        return draw(fresh)  # replaced
    contents = {}  # a directory edited inside
    for name, child in entry.contents.items():
        edited = _variant(draw, child, untracked, problematic)
        if edited is not None:
            contents[name] = edited
    contents.update(draw(st.dictionaries(NAMES, fresh, max_size=1)))
    return Entry.directory(contents)


@st.composite
def variant(draw, entry: Optional[Entry], untracked: bool, problematic: bool) -> Optional[Entry]:
    """A side derived from ``entry``: kept, dropped, replaced, or (directories) edited inside."""
    return _variant(draw, entry, untracked, problematic)


def scenario(data, untracked: bool = True, problematic: bool = True):
    ancestor = data.draw(roots(), label="ancestor")
    alpha = data.draw(variant(ancestor, untracked, problematic), label="alpha")
    beta = data.draw(variant(ancestor, untracked, problematic), label="beta")
    return ancestor, alpha, beta


def next_ancestor(ancestor: Optional[Entry], result) -> Optional[Entry]:
    """The ancestor as the controller computes it when every transition fully succeeds."""
    after = apply_changes(ancestor, result.ancestor_changes)
    applied = [Change(c.path, None, c.new) for c in (*result.alpha_changes, *result.beta_changes)]
    return apply_changes(after, applied)


MODES = pytest.mark.parametrize("mode", list(Mode), ids=[m.value for m in Mode])
TWO_WAY = pytest.mark.parametrize(
    "mode", [Mode.TWO_WAY_SAFE, Mode.TWO_WAY_RESOLVED], ids=["two-way-safe", "two-way-resolved"]
)
ONE_WAY = pytest.mark.parametrize(
    "mode", [Mode.ONE_WAY_SAFE, Mode.ONE_WAY_REPLICA], ids=["one-way-safe", "one-way-replica"]
)


@MODES
@SETTINGS
@given(snapshot=roots())
def test_unchanged_snapshots_change_nothing(mode, snapshot):
    assert reconcile(snapshot, snapshot, snapshot, mode).empty


@MODES
@SETTINGS
@given(ancestor=roots(), side=roots(untracked=True))
def test_identical_sides_only_move_the_ancestor(mode, ancestor, side):
    result = reconcile(ancestor, side, side, mode)
    assert (result.alpha_changes, result.beta_changes, result.conflicts) == ([], [], [])
    assert apply_changes(ancestor, result.ancestor_changes) == synchronizable(side)


@TWO_WAY
@SETTINGS
@given(data=st.data())
def test_two_way_without_conflicts_makes_sides_equal(mode, data):
    ancestor, alpha, beta = scenario(data, problematic=False)
    result = reconcile(ancestor, alpha, beta, mode)
    if result.conflicts:
        return
    new_alpha = apply_changes(alpha, result.alpha_changes)
    new_beta = apply_changes(beta, result.beta_changes)
    assert synchronizable(new_alpha) == synchronizable(new_beta)
    new_ancestor = next_ancestor(ancestor, result)
    assert new_ancestor == synchronizable(new_alpha)
    # ... and the next cycle has nothing left to do.
    assert reconcile(new_ancestor, new_alpha, new_beta, mode).empty


@SETTINGS
@given(data=st.data())
def test_one_way_replica_makes_beta_alpha_synchronizable_content(data):
    ancestor = data.draw(roots(), label="ancestor")
    alpha = data.draw(variant(ancestor, untracked=True, problematic=False), label="alpha")
    beta = data.draw(variant(ancestor, untracked=False, problematic=False), label="beta")
    result = reconcile(ancestor, alpha, beta, Mode.ONE_WAY_REPLICA)
    assert result.conflicts == []
    assert apply_changes(beta, result.beta_changes) == synchronizable(alpha)


@ONE_WAY
@SETTINGS
@given(data=st.data())
def test_one_way_never_changes_alpha(mode, data):
    ancestor, alpha, beta = scenario(data)
    assert reconcile(ancestor, alpha, beta, mode).alpha_changes == []


@MODES
@SETTINGS
@given(data=st.data())
def test_next_ancestor_is_valid(mode, data):
    ancestor, alpha, beta = scenario(data)
    validate_ancestor(next_ancestor(ancestor, reconcile(ancestor, alpha, beta, mode)))


@MODES
@SETTINGS
@given(data=st.data())
def test_side_changes_match_the_scan_and_never_touch_unsynchronizable_content(mode, data):
    ancestor, alpha, beta = scenario(data)
    result = reconcile(ancestor, alpha, beta, mode)
    for side, changes in ((alpha, result.alpha_changes), (beta, result.beta_changes)):
        for change in changes:
            assert change.old == lookup(side, change.path)  # what the transition will verify
            assert change.old != change.new
            assert is_synchronizable(change.old)  # untracked/problematic content never removed
            assert is_synchronizable(change.new)  # ... and never propagated


@MODES
@SETTINGS
@given(data=st.data())
def test_conflicts_are_slim_sorted_and_block_only_their_subtree(mode, data):
    ancestor, alpha, beta = scenario(data)
    result = reconcile(ancestor, alpha, beta, mode)
    roots_ = [conflict.root for conflict in result.conflicts]
    assert roots_ == sorted(roots_)
    for conflict in result.conflicts:
        for change in (*conflict.alpha_changes, *conflict.beta_changes):
            assert not (change.old and change.old.contents) and not (change.new and change.new.contents)
    touched = [c.path for c in (*result.ancestor_changes, *result.alpha_changes, *result.beta_changes)]
    for root in roots_:
        for path in touched:
            inside = root == "" or path == root or path.startswith(root + "/")
            assert not inside, f"change at {path!r} inside conflict {root!r}"


@pytest.mark.parametrize(
    "mode", [Mode.TWO_WAY_SAFE, Mode.ONE_WAY_SAFE], ids=["two-way-safe", "one-way-safe"]
)
@SETTINGS
@given(data=st.data())
def test_safe_modes_only_overwrite_unmodified_or_deleted_content(mode, data):
    """A side change may only replace what that side left as it was or partly deleted."""
    ancestor, alpha, beta = scenario(data)
    result = reconcile(ancestor, alpha, beta, mode)
    for change in (*result.alpha_changes, *result.beta_changes):
        assert non_deletions(diff(change.path, lookup(ancestor, change.path), change.old)) == []
