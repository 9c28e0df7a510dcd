"""What a scan keeps between scans: no ignore memo when nothing can be ignored; a full rescan
of an unchanged root shares the previous snapshot's objects (through the endpoint)."""

import pytest

from mutagen_actors.actors.sync.ignore import compile_ignores
from mutagen_actors.actors.sync.model import Kind, lookup
from mutagen_actors.actors.sync.scan import scan
from mutagen_actors.actors.sync.settings import IgnoreSyntax
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint


@pytest.fixture
def root(tmp_path):
    base = tmp_path / "root"
    (base / "d").mkdir(parents=True)
    (base / "d" / "a.txt").write_text("a")
    (base / "d" / "b.log").write_text("b")
    (base / ".git").mkdir()
    (base / ".git" / "HEAD").write_text("ref")
    return str(base)


@pytest.mark.parametrize(
    "patterns,syntax,vcs,memo_kept,ignored",
    [
        ([], IgnoreSyntax.MUTAGEN, False, False, []),
        ([], IgnoreSyntax.DOCKER, False, False, []),
        (["*.log"], IgnoreSyntax.MUTAGEN, False, True, ["d/b.log"]),
        ([], IgnoreSyntax.MUTAGEN, True, True, [".git"]),
    ],
    ids=["mutagen-none", "docker-none", "pattern", "vcs"],
)
def test_ignore_memo_only_when_something_can_be_ignored(root, patterns, syntax, vcs, memo_kept, ignored):
    ignorer = compile_ignores(patterns, syntax, vcs)
    result = scan(root, ignorer=ignorer)
    assert bool(result._ignore_memo) is memo_kept
    for path in ["d/a.txt", "d/b.log", ".git"]:
        kind = lookup(result.root, path).kind
        assert (kind == Kind.UNTRACKED) is (path in ignored), path
    assert result.root == scan(root, ignorer=None if not memo_kept else ignorer).root


def test_full_rescan_shares_the_previous_snapshot(root, tmp_path):
    endpoint = LocalEndpoint(EndpointSettings(root=root, session="s", side="alpha",
                                              data_directory=str(tmp_path / "data")))
    first = endpoint.scan(True, None).root
    generation = endpoint.generation
    second = endpoint.scan(True, None).root
    assert second is first and endpoint.generation == generation
    with open(f"{root}/d/a.txt", "w") as handle:
        handle.write("changed")
    third = endpoint.scan(True, None).root
    assert third != first and endpoint.generation == generation + 1
    assert lookup(third, ".git") is lookup(first, ".git")
    assert lookup(third, "d/b.log") is lookup(first, "d/b.log")


def _change(root: str, what: str) -> None:
    import os
    import shutil

    if what == "content":
        with open(f"{root}/d/a.txt", "w") as handle:
            handle.write("other")
    elif what == "executable":
        os.chmod(f"{root}/d/a.txt", 0o755)
    elif what == "added":
        with open(f"{root}/d/new.txt", "w") as handle:
            handle.write("new")
    elif what == "removed":
        os.unlink(f"{root}/d/b.log")
    elif what == "dir-to-file":
        shutil.rmtree(f"{root}/d")
        with open(f"{root}/d", "w") as handle:
            handle.write("now a file")
    elif what == "symlink":
        os.symlink("d/a.txt", f"{root}/link")
    elif what == "nothing":
        pass


@pytest.mark.parametrize("what,unchanged", [
    ("nothing", [""]),
    ("content", [".git", "d/b.log"]),
    ("executable", [".git", "d/b.log"]),
    ("added", [".git", "d/a.txt", "d/b.log"]),
    ("removed", [".git", "d/a.txt"]),
    ("dir-to-file", [".git"]),
    ("symlink", [".git", "d"]),
])
def test_full_scan_reusing_a_previous_snapshot_equals_a_fresh_one(root, what, unchanged):
    before = scan(root)
    _change(root, what)
    reused = scan(root, cache=before.cache, reuse=before.root)
    fresh = scan(root)
    assert reused.root == fresh.root
    assert reused.counts == fresh.counts
    for path in unchanged:
        assert lookup(reused.root, path) is lookup(before.root, path), path
    if what != "nothing":
        assert reused.root is not before.root


@pytest.mark.parametrize("what,dirty,from_hint,from_previous", [
    # what the hint (the tree a transition wrote) offers and the disk agrees with: taken from it
    ("content", ["d/a.txt"], ["d/a.txt"], [".git", "d/b.log"]),
    ("added", ["d/new.txt"], ["d/new.txt"], [".git", "d/a.txt", "d/b.log"]),
    ("executable", ["d/a.txt"], ["d/a.txt"], [".git", "d/b.log"]),
    ("symlink", ["link"], [], [".git", "d"]),  # symlinks are cheap: never taken from a hint
    ("dir-to-file", ["d"], ["d"], [".git"]),
    # a whole dirty directory: its unchanged children come from the hint too
    ("added", ["d"], ["d/new.txt", "d/a.txt", "d/b.log"], [".git"]),
])
def test_incremental_scan_takes_the_written_entries_from_the_hint(root, what, dirty, from_hint,
                                                                   from_previous):
    before = scan(root)
    _change(root, what)
    hint = scan(root).root  # equal to the disk, other objects (as a transition's results are)
    result = scan(root, cache=before.cache, previous=before, dirty=dirty, reuse=hint)
    assert result.root == scan(root).root
    for path in from_hint:
        assert lookup(result.root, path) is lookup(hint, path), path
    for path in from_previous:
        assert lookup(result.root, path) is lookup(before.root, path), path


@pytest.mark.parametrize("hint_kind", ["stale-content", "other-kind", "missing"])
def test_incremental_scan_ignores_a_hint_that_does_not_match_the_disk(root, tmp_path, hint_kind):
    before = scan(root)
    other = tmp_path / "other"
    (other / "d").mkdir(parents=True)
    if hint_kind == "stale-content":
        (other / "d" / "a.txt").write_text("not what the disk holds")
    elif hint_kind == "other-kind":
        (other / "d" / "a.txt").mkdir()
    hint = scan(str(other)).root
    _change(root, "content")
    result = scan(root, cache=before.cache, previous=before, dirty=["d/a.txt"], reuse=hint)
    assert result.root == scan(root).root
    assert lookup(result.root, "d/a.txt").digest != lookup(before.root, "d/a.txt").digest


def test_endpoint_scan_after_a_transition_holds_the_written_entries(root, tmp_path):
    from mutagen_actors.actors.sync.model import Change, Entry

    endpoint = LocalEndpoint(EndpointSettings(root=root, session="s", side="beta",
                                              data_directory=str(tmp_path / "data")))
    endpoint.scan(True, None)
    new = Entry.directory({"x": Entry.directory({"y": Entry.directory()}), "z": Entry.directory()})
    result = endpoint.transition([Change("new", None, new)])
    assert not result.problems
    written = result.results[0].new
    snapshot = endpoint.scan(False, {"new"}).root
    assert lookup(snapshot, "new") == new
    assert lookup(snapshot, "new") is written
    assert lookup(snapshot, "d") is not None and endpoint._written is None
