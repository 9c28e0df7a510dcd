"""apply_changes and validate_ancestor."""

from __future__ import annotations

import pytest

from mutagen_actors.actors.sync.apply import apply_changes, validate_ancestor
from mutagen_actors.actors.sync.model import Change, Entry, Kind

F = Entry.file(b"\x01" * 16)
F2 = Entry.file(b"\x02" * 16)
D0 = Entry.directory()
L = Entry.symlink("f")
U = Entry.untracked()
P = Entry.problematic("unable to open file: permission denied")


def R(**children):
    return Entry.directory(children)


@pytest.mark.parametrize(
    "root,changes,expected",
    [
        pytest.param(R(f=F), [], R(f=F), id="no-changes"),
        pytest.param(None, [Change("", None, R(f=F))], R(f=F), id="root-created"),
        pytest.param(R(f=F), [Change("", R(f=F), None)], None, id="root-deleted"),
        pytest.param(R(), [Change("f", None, F)], R(f=F), id="child-created"),
        pytest.param(R(f=F), [Change("f", F, F2)], R(f=F2), id="child-replaced"),
        pytest.param(R(f=F, g=F), [Change("f", F, None)], R(g=F), id="child-removed"),
        pytest.param(R(f=F), [Change("g", None, None)], R(f=F), id="removing-an-absent-child-is-a-no-op"),
        pytest.param(R(f=F), [Change("f", None, F2)], R(f=F2), id="old-is-ignored"),
        pytest.param(
            R(),
            [Change("x", None, D0), Change("x/f", None, F), Change("x/g", None, L)],
            R(x=R(f=F, g=L)),
            id="parent-then-children",
        ),
        pytest.param(
            R(x=R(y=R(z=F)), w=F),
            [Change("x/y/z", F, F2), Change("x/y/n", None, L)],
            R(x=R(y=R(z=F2, n=L)), w=F),
            id="deep-changes-keep-siblings",
        ),
        pytest.param(R(x=R(f=F)), [Change("x", None, F)], R(x=F), id="directory-replaced-by-file"),
        pytest.param(
            F,
            [Change("", None, D0), Change("f", None, F2)],
            R(f=F2),
            id="root-replaced-then-child-added",
        ),
        pytest.param(
            R(x=R(f=F)),
            [Change("x/f", None, F2), Change("x", None, None), Change("x", None, D0)],
            R(x=D0),
            id="changes-apply-in-order",
        ),
    ],
)
def test_apply_changes(root, changes, expected):
    assert apply_changes(root, changes) == expected


def test_apply_changes_leaves_the_input_untouched():
    root = R(x=R(f=F))
    apply_changes(root, [Change("x/f", F, F2), Change("x/g", None, F)])
    assert root == R(x=R(f=F))


def test_many_changes_below_one_large_directory():
    root = R(**{f"f{i}": F for i in range(5000)})
    changes = [Change(f"f{i}", F, F2) for i in range(0, 5000, 2)]
    result = apply_changes(root, changes)
    assert sum(1 for e in result.contents.values() if e == F2) == 2500
    assert len(result.contents) == 5000


@pytest.mark.parametrize(
    "root,changes",
    [
        pytest.param(R(), [Change("x/f", None, F)], id="missing-parent"),
        pytest.param(R(x=F), [Change("x/f", None, F)], id="parent-is-a-file"),
        pytest.param(None, [Change("f", None, F)], id="no-root"),
        pytest.param(F, [Change("f", None, F)], id="root-is-a-file"),
    ],
)
def test_apply_changes_rejects_unresolvable_paths(root, changes):
    with pytest.raises(ValueError, match="unable to resolve parent path"):
        apply_changes(root, changes)


@pytest.mark.parametrize(
    "root",
    [
        pytest.param(None, id="absent"),
        pytest.param(F, id="file-root"),
        pytest.param(L, id="symlink-root"),
        pytest.param(D0, id="empty-directory"),
        pytest.param(R(x=R(f=F, l=L), e=D0), id="nested"),
    ],
)
def test_valid_ancestors(root):
    validate_ancestor(root)


@pytest.mark.parametrize(
    "root,message",
    [
        pytest.param(U, "untracked entry at the root", id="untracked-root"),
        pytest.param(R(x=R(u=U)), "untracked entry at 'x/u'", id="untracked-nested"),
        pytest.param(R(p=P), "problematic entry at 'p'", id="problematic"),
        pytest.param(R(d=Entry.phantom()), "phantom directory at 'd'", id="phantom"),
        pytest.param(R(f=Entry.file(b"")), "file without digest at 'f'", id="file-without-digest"),
        pytest.param(R(l=Entry.symlink("")), "symbolic link without target at 'l'", id="empty-symlink"),
        pytest.param(R(**{"": F}), "bad entry name ''", id="empty-name"),
        pytest.param(R(**{"..": F}), "bad entry name '..'", id="dot-dot-name"),
        pytest.param(R(**{"a/b": F}), "bad entry name 'a/b'", id="slash-in-name"),
        pytest.param(R(**{"a\x00": F}), "bad entry name", id="nul-in-name"),
        pytest.param(R(f=Entry(Kind.FILE, {"x": F}, digest=b"1")), "non-directory with contents at 'f'", id="file-with-contents"),
    ],
)
def test_invalid_ancestors(root, message):
    with pytest.raises(ValueError, match="invalid ancestor: " + message.replace(".", r"\.")):
        validate_ancestor(root)


def test_validation_against_the_previous_ancestor_still_finds_new_problems():
    previous = R(x=R(f=F), y=R(g=F))
    validate_ancestor(previous)
    updated = apply_changes(previous, [Change("x/u", None, U)])
    with pytest.raises(ValueError, match="untracked entry at 'x/u'"):
        validate_ancestor(updated, known_valid=previous)
    validate_ancestor(apply_changes(previous, [Change("x/h", None, F2)]), known_valid=previous)
    validate_ancestor(previous, known_valid=previous)
