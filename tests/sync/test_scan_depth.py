"""The scan's depth cap: a directory ``MAX_DEPTH`` levels below the root is a scan problem (its
contents are not scanned), so no snapshot is deeper than what ``Entry ==``, msgspec and the
recursive steps of the pipeline handle within Python's recursion limit."""

import os

import msgspec
import pytest

from mutagen_actors.actors.sync.model import Entry, Kind, Problem, lookup
from mutagen_actors.actors.sync.reconcile import reconcile
from mutagen_actors.actors.sync.scan import MAX_DEPTH, TOO_DEEP, scan
from mutagen_actors.actors.sync.settings import Mode


def chain(levels: int) -> str:
    """Root-relative path of a directory ``levels`` deep (one-letter names)."""
    return "/".join(["d"] * levels)


def make_deep(root, levels: int) -> None:
    """``levels`` nested directories with a file at every 50th level and in the deepest."""
    os.makedirs(os.path.join(root, chain(levels)))
    for level in list(range(50, levels, 50)) + [levels, MAX_DEPTH - 1]:
        if level <= levels:
            with open(os.path.join(root, chain(level), "f"), "wb") as stream:
                stream.write(b"level %d" % level)


@pytest.mark.parametrize("levels, problem_expected", [
    (MAX_DEPTH - 1, False),  # the deepest directory that is scanned
    (MAX_DEPTH, True),  # the first directory that is not
    (MAX_DEPTH + 50, True),
    (2 * MAX_DEPTH + 100, True),  # deeper than the recursion limit allows without the cap
])
def test_directory_at_the_cap_is_a_problem_and_the_rest_is_scanned(tmp_path, levels,
                                                                   problem_expected):
    make_deep(tmp_path, levels)
    result = scan(str(tmp_path))
    capped = chain(MAX_DEPTH)
    if problem_expected:
        assert result.problems == [Problem(capped, TOO_DEEP)]
        assert lookup(result.root, capped) == Entry.problematic(TOO_DEEP)
        assert result.counts.directories == MAX_DEPTH  # the root and levels 1..MAX_DEPTH-1
    else:
        assert result.problems == []
        assert result.counts.directories == levels + 1
    # Content above the cap is all there, including a file in the deepest scanned directory.
    deepest = lookup(result.root, chain(MAX_DEPTH - 1) + "/f")
    assert deepest is not None and deepest.kind == Kind.FILE
    assert lookup(result.root, chain(50) + "/f").kind == Kind.FILE


def test_capped_snapshot_survives_every_recursive_step(tmp_path):
    """What the pipeline does with a snapshot at the cap works: deep equality, msgpack
    round trip, a reconcile that creates it all on the other side and one against itself."""
    make_deep(tmp_path, MAX_DEPTH + 50)
    first = scan(str(tmp_path)).root
    second = scan(str(tmp_path)).root
    assert first == second and first is not second
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(first), type=Entry)
    assert decoded == first
    created = reconcile(None, first, Entry.directory(), Mode.TWO_WAY_SAFE)
    assert not created.conflicts and created.beta_changes
    assert reconcile(None, first, first, Mode.TWO_WAY_SAFE).beta_changes == []


def test_incremental_scan_below_the_cap_keeps_the_problem(tmp_path):
    make_deep(tmp_path, MAX_DEPTH + 20)
    previous = scan(str(tmp_path))
    deep = chain(MAX_DEPTH + 10)
    with open(os.path.join(tmp_path, deep, "new"), "wb") as stream:
        stream.write(b"new")
    shallow = chain(10) + "/g"
    with open(os.path.join(tmp_path, shallow), "wb") as stream:
        stream.write(b"g")
    result = scan(str(tmp_path), cache=previous.cache, previous=previous,
                  dirty=[deep + "/new", shallow])
    assert result.problems == [Problem(chain(MAX_DEPTH), TOO_DEEP)]
    assert lookup(result.root, shallow).kind == Kind.FILE
    assert result.root == scan(str(tmp_path)).root
