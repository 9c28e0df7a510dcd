"""Safety halts: one-sided root emptying, root deletion, root type change (reference section 7)."""

from __future__ import annotations

import pytest

from mutagen_actors.actors.sync.model import Change, Entry
from mutagen_actors.actors.sync.reconcile import Reconciliation, reconcile
from mutagen_actors.actors.sync.safety import HaltReason, check_root_changes, check_root_emptied
from mutagen_actors.actors.sync.settings import Mode

F = Entry.file(b"\x01" * 16)
F2 = Entry.file(b"\x02" * 16)
L = Entry.symlink("f")
U = Entry.untracked()
P = Entry.problematic("unable to read directory contents: permission denied")
EMPTY = Entry.directory()


def R(**children):
    return Entry.directory(children)


TWO_ENTRIES = R(a=F, b=R(c=F))

EMPTIED = HaltReason.ROOT_EMPTIED


@pytest.mark.parametrize(
    "ancestor,alpha,beta,expected",
    [
        # halting
        pytest.param(TWO_ENTRIES, EMPTY, TWO_ENTRIES, EMPTIED, id="alpha-emptied"),
        pytest.param(TWO_ENTRIES, TWO_ENTRIES, EMPTY, EMPTIED, id="beta-emptied"),
        pytest.param(R(a=F, b=F, c=F), EMPTY, R(a=F2, b=F, c=F), EMPTIED, id="alpha-emptied-beta-edited"),
        pytest.param(TWO_ENTRIES, EMPTY, None, EMPTIED, id="alpha-emptied-beta-root-gone"),
        pytest.param(TWO_ENTRIES, EMPTY, F, EMPTIED, id="alpha-emptied-beta-root-now-a-file"),
        pytest.param(TWO_ENTRIES, R(node_modules=U), TWO_ENTRIES, EMPTIED, id="only-ignored-content-left"),
        pytest.param(TWO_ENTRIES, TWO_ENTRIES, R(x=P), EMPTIED, id="only-problematic-content-left"),
        pytest.param(TWO_ENTRIES, R(d=Entry.phantom({"u": U})), TWO_ENTRIES, EMPTIED, id="only-empty-phantom-left"),
        # not halting
        pytest.param(R(a=F), EMPTY, R(a=F), None, id="ancestor-had-one-entry"),
        pytest.param(TWO_ENTRIES, EMPTY, EMPTY, None, id="both-emptied"),
        pytest.param(TWO_ENTRIES, R(u=U), EMPTY, None, id="both-emptied-one-keeps-ignored-content"),
        pytest.param(None, EMPTY, TWO_ENTRIES, None, id="no-ancestor"),
        pytest.param(EMPTY, EMPTY, TWO_ENTRIES, None, id="ancestor-empty"),
        pytest.param(F, EMPTY, F, None, id="ancestor-a-file"),
        pytest.param(TWO_ENTRIES, None, TWO_ENTRIES, None, id="alpha-root-deleted-is-not-emptying"),
        pytest.param(TWO_ENTRIES, F, TWO_ENTRIES, None, id="alpha-root-replaced-by-file"),
        pytest.param(TWO_ENTRIES, R(a=F), TWO_ENTRIES, None, id="alpha-partially-deleted"),
        pytest.param(TWO_ENTRIES, R(new=F), TWO_ENTRIES, None, id="alpha-replaced-everything"),
        pytest.param(TWO_ENTRIES, R(d=Entry.phantom({"f": F})), TWO_ENTRIES, None, id="phantom-with-tracked-content"),
        pytest.param(TWO_ENTRIES, TWO_ENTRIES, TWO_ENTRIES, None, id="unchanged"),
    ],
)
def test_check_root_emptied(ancestor, alpha, beta, expected):
    assert check_root_emptied(ancestor, alpha, beta) is expected


@pytest.mark.parametrize(
    "ancestor,alpha,beta,mode,expected",
    [
        pytest.param(R(f=F), None, R(f=F), Mode.TWO_WAY_SAFE, HaltReason.ROOT_DELETION, id="alpha-deleted-root"),
        pytest.param(R(f=F), R(f=F), None, Mode.TWO_WAY_SAFE, HaltReason.ROOT_DELETION, id="beta-deleted-root"),
        pytest.param(R(f=F), None, R(f=F), Mode.ONE_WAY_REPLICA, HaltReason.ROOT_DELETION, id="replica-alpha-deleted-root"),
        pytest.param(R(f=F), R(f=F), None, Mode.ONE_WAY_SAFE, None, id="one-way-recreates-beta-root"),
        pytest.param(R(f=F), F, R(f=F), Mode.TWO_WAY_SAFE, HaltReason.ROOT_TYPE_CHANGE, id="dir-to-file"),
        pytest.param(F, F, L, Mode.TWO_WAY_SAFE, HaltReason.ROOT_TYPE_CHANGE, id="file-to-symlink-on-beta"),
        pytest.param(F, R(f=F), F, Mode.TWO_WAY_RESOLVED, HaltReason.ROOT_TYPE_CHANGE, id="file-to-dir"),
        pytest.param(F, F2, F, Mode.TWO_WAY_SAFE, None, id="root-file-edited"),
        pytest.param(None, R(f=F), None, Mode.TWO_WAY_SAFE, None, id="root-created"),
        pytest.param(R(f=F, g=F), R(f=F), R(f=F, g=F), Mode.TWO_WAY_SAFE, None, id="child-deleted"),
        pytest.param(R(f=F), R(f=F), R(f=F), Mode.TWO_WAY_SAFE, None, id="unchanged"),
        pytest.param(R(f=F), None, None, Mode.TWO_WAY_SAFE, None, id="both-deleted-root"),
    ],
)
def test_check_root_changes_after_reconcile(ancestor, alpha, beta, mode, expected):
    assert check_root_changes(reconcile(ancestor, alpha, beta, mode)) is expected


def test_root_deletion_is_reported_before_a_type_change():
    result = Reconciliation(alpha_changes=[Change("", F, L)], beta_changes=[Change("", R(f=F), None)])
    assert check_root_changes(result) is HaltReason.ROOT_DELETION


@pytest.mark.parametrize(
    "reason,value,description",
    [
        (HaltReason.ROOT_EMPTIED, "halted-on-root-emptied", "Halted due to one-sided root emptying"),
        (HaltReason.ROOT_DELETION, "halted-on-root-deletion", "Halted due to root deletion"),
        (HaltReason.ROOT_TYPE_CHANGE, "halted-on-root-type-change", "Halted due to root type change"),
    ],
)
def test_halt_reason_words(reason, value, description):
    assert reason.value == value and str(reason) == value and reason == value
    assert reason.description == description
    assert HaltReason(value) is reason
