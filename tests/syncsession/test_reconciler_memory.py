"""The reconciler's new ancestor holds the cycle's snapshot objects where they are equal (one
copy of the synchronized tree in memory, not the snapshots plus the transition's results)."""

import msgspec
import pytest

from mutagen_actors.actors.sync.model import Entry, lookup
from mutagen_actors.actors.syncsession.reconciler import ReconcilerActor


def _tree(content: bytes = b"1") -> Entry:
    return Entry.directory({
        "src": Entry.directory({"a.py": Entry.file(b"a" * 16), "b.py": Entry.file(content * 16)}),
        "docs": Entry.directory({"x.md": Entry.file(b"x" * 16)}),
        "link": Entry.symlink("src"),
    })


def _with_readme(tree: Entry) -> Entry:
    return Entry.directory({**tree.contents, "README": Entry.file(b"r" * 16)})


@pytest.mark.parametrize("alpha,beta,updated,from_alpha,from_beta", [
    # an initial sync alpha -> beta: the whole ancestor is alpha's snapshot
    (_tree(), Entry.directory(), _tree(), [""], []),
    # beta -> alpha: the whole ancestor is beta's snapshot
    (Entry.directory(), _tree(), _tree(), [], [""]),
    # the ancestor equals neither side as a whole (a file only it has): equal subtrees come
    # from alpha's snapshot
    (_tree(), _tree(b"2"), _with_readme(_tree()), ["src", "docs", "link"], []),
    # alpha changed src/b.py differently: src/b.py from beta, the rest from alpha
    (_tree(b"3"), _tree(b"2"), _with_readme(_tree(b"2")), ["docs", "src/a.py", "link"],
     ["src/b.py"]),
    # no snapshots: the results' objects stay
    (None, None, _tree(), [], []),
], ids=["alpha-to-beta", "beta-to-alpha", "partly-alpha", "alpha-and-beta", "no-snapshots"])
def test_new_ancestor_takes_the_snapshots_objects(alpha, beta, updated, from_alpha, from_beta):
    expected = msgspec.msgpack.decode(msgspec.msgpack.encode(updated), type=Entry)
    kept = ReconcilerActor._keep_scanned_objects(updated, alpha, beta)
    assert kept == expected
    for path in from_alpha:
        assert lookup(kept, path) is lookup(alpha, path), path
    for path in from_beta:
        assert lookup(kept, path) is lookup(beta, path), path
    if not from_alpha and not from_beta:
        assert kept is updated
