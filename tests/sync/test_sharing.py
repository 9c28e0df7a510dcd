"""share(new, old): the result equals new, and its subtrees equal to old's are old's objects."""

import pytest

from mutagen_actors.actors.sync.model import Entry, lookup, walk
from mutagen_actors.actors.sync.sharing import share

D = Entry.directory
F = Entry.file


def tree(**overrides):
    """A small tree; keyword arguments replace the leaf ``a/b/<name>`` files."""
    leaves = {"x": F(b"1"), "y": F(b"2", True)}
    leaves.update(overrides)
    leaves = {name: entry for name, entry in leaves.items() if entry is not None}
    return D({"a": D({"b": D(leaves), "c": D({"z": F(b"3")})}), "l": Entry.symlink("t"), "u": Entry.untracked()})


CASES = [
    # (new, old, paths whose entries must be old's objects, paths that must not)
    (tree(), tree(), [""], []),
    (tree(x=F(b"changed")), tree(), ["a/c", "a/b/y", "l"], ["", "a", "a/b", "a/b/x"]),
    (tree(w=F(b"4")), tree(), ["a/c", "a/b/x", "a/b/y"], ["a/b"]),
    (tree(x=None), tree(), ["a/c", "a/b/y"], ["a/b"]),
    (D({"a": F(b"now a file")}), tree(), [], ["", "a"]),
    (tree(), D({"a": F(b"was a file")}), [], ["", "a"]),
    (tree(), None, [], [""]),
    (None, tree(), [], []),
    (Entry.phantom({"p": D({"q": F(b"5")})}), Entry.phantom({"p": D({"q": F(b"5")}), "r": F(b"6")}),
     ["p", "p/q"], [""]),
]


@pytest.mark.parametrize("new,old,shared,own", CASES,
                         ids=["equal", "one-changed", "one-added", "one-removed", "dir-to-file",
                              "file-to-dir", "no-old", "no-new", "phantom"])
def test_share(new, old, shared, own):
    expected = new  # equality is by value: compare with a separately built copy too
    copy = None if new is None else Entry(new.kind, new.contents and dict(new.contents))
    result = share(new, old)
    assert result == expected
    assert result == copy
    for path in shared:
        assert lookup(result, path) is lookup(old, path), path
    for path in own:
        if lookup(old, path) is not None and lookup(result, path) is not None:
            assert lookup(result, path) is not lookup(old, path), path


def test_every_equal_file_is_shared_after_a_change_elsewhere():
    old = D({f"d{i}": D({f"f{j}": F(bytes([i, j])) for j in range(20)}) for i in range(50)})
    new = D({f"d{i}": D({f"f{j}": F(bytes([i, j])) for j in range(20)}) for i in range(50)})
    new.contents["d7"].contents["f3"] = F(b"changed")
    result = share(new, old)
    old_ids = {id(entry) for _, entry in walk(old)}
    not_shared = [path for path, entry in walk(result) if id(entry) not in old_ids]
    assert sorted(not_shared) == ["", "d7", "d7/f3"]
