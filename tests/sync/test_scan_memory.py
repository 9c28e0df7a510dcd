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
