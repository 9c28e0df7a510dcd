"""New directories below the root are built whole under a temporary name, then renamed into place
(transition ``build_directory``): the result is the same as creating them entry by entry, a name
that exists is never replaced, nothing temporary stays, and a temporary directory left by a crash
does not block removing its parent."""

from __future__ import annotations

import os
import subprocess

import pytest

from mutagen_actors.actors.sync import transition as transition_module
from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry, Kind, Problem
from mutagen_actors.actors.sync.scan import scan
from mutagen_actors.actors.sync.settings import TEMPORARY_PREFIX, HashAlgorithm
from mutagen_actors.actors.sync.staging import Staging
from mutagen_actors.actors.sync.transition import MODIFICATION_DETECTED, UNKNOWN_CONTENT, transition

XXH = HashAlgorithm.XXH128


@pytest.fixture(params=["renameat2", "link"])
def rename_kind(request, monkeypatch):
    """Both ways of a rename that never replaces (the fallback renames a directory after a
    check, since directories take no hard links)."""
    if request.param == "link":
        monkeypatch.setattr(transition_module, "_renameat2", None)
    elif transition_module._renameat2 is None:
        pytest.skip("no renameat2 here")
    return request.param


@pytest.fixture
def side(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    return str(root), Staging(str(tmp_path / "staging"), XXH), DigestCache(XXH)


def stage(staging: Staging, data: bytes) -> Entry:
    digest = digest_bytes(data, XXH)
    staging.receive(digest, [data])
    return Entry(Kind.FILE, digest=digest)


def everything(root: str) -> list[str]:
    found = []
    for parent, dirs, names in os.walk(root):
        found += [os.path.relpath(os.path.join(parent, n), root) + "/" for n in dirs]
        found += [os.path.relpath(os.path.join(parent, n), root) for n in names]
    return sorted(found)


def tree(staging: Staging, prefix: str) -> Entry:
    return Entry.directory({
        "a": stage(staging, f"{prefix} a".encode()),
        "sub": Entry.directory({"b": stage(staging, f"{prefix} b".encode()),
                                "deeper": Entry.directory({"c": stage(staging, f"{prefix} c".encode())}),
                                "empty": Entry.directory()}),
    })


@pytest.mark.parametrize("where", ["top", "nested/dir"])
def test_a_new_tree_appears_complete_and_as_a_scan_sees_it(side, rename_kind, where):
    root, staging, cache = side
    parent = os.path.dirname(where)
    if parent:
        os.makedirs(os.path.join(root, parent))
    new = tree(staging, where)
    result = transition(root, [Change(where, None, new)], cache=cache, staging=staging)
    assert result.problems == []
    assert result.results == [Change(where, None, new)]
    prefix = where + "/"
    assert [p for p in everything(root) if p.startswith(prefix) and p != prefix] == [
        prefix + p for p in ["a", "sub/", "sub/b", "sub/deeper/", "sub/deeper/c", "sub/empty/"]]
    assert not [p for p in everything(root) if TEMPORARY_PREFIX in p]
    # What a scan finds equals what the transition reports, and every file is recorded in the
    # cache under its final path (so the scan hashes nothing it trusts).
    scanned = scan(root, cache=cache).root
    node = scanned
    for part in where.split("/"):
        node = node.contents[part]
    assert node == new
    assert cache.record(f"{where}/sub/deeper/c") is not None


def test_the_root_created_whole_gets_its_children_built_inside_it(tmp_path, rename_kind):
    root = str(tmp_path / "absent-root")
    staging, cache = Staging(str(tmp_path / "staging"), XXH), DigestCache(XXH)
    new = Entry.directory({"t": tree(staging, "t"), "f": stage(staging, b"top file")})
    result = transition(root, [Change("", None, new)], cache=cache, staging=staging)
    assert result.problems == []
    assert result.results == [Change("", None, new)]
    assert sorted(os.listdir(tmp_path)) == ["absent-root", "staging"]  # nothing beside the root
    assert scan(root, cache=cache).root == new


@pytest.mark.parametrize("existing", ["file", "directory", "symlink"])
def test_a_name_that_exists_is_never_replaced_and_nothing_temporary_stays(side, rename_kind, existing):
    root, staging, cache = side
    target = os.path.join(root, "d")
    if existing == "file":
        with open(target, "wb") as handle:
            handle.write(b"mine")
    elif existing == "directory":
        os.mkdir(target)
        with open(os.path.join(target, "mine"), "wb") as handle:
            handle.write(b"mine")
    else:
        os.symlink("elsewhere", target)
    before = everything(root)
    result = transition(root, [Change("d", None, tree(staging, "d"))], cache=cache, staging=staging)
    assert result.problems == [Problem("d", MODIFICATION_DETECTED)]
    assert result.results == [Change("d", None, None)]
    assert everything(root) == before
    assert cache.record("d/a") is None


def test_the_final_rename_never_replaces_a_directory_that_appeared(tmp_path, rename_kind):
    """The last step of a build: the name taken meanwhile stays as it is, the temporary too
    (the caller removes it)."""
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.mkdir(tmp_path / "built")
        (tmp_path / "built" / "x").write_bytes(b"new")
        os.mkdir(tmp_path / "d")
        (tmp_path / "d" / "y").write_bytes(b"theirs")
        assert transition_module._move_no_replace(fd, "built", fd, "d") is False
        assert sorted(os.listdir(tmp_path / "d")) == ["y"]
        assert sorted(os.listdir(tmp_path / "built")) == ["x"]
        assert transition_module._move_no_replace(fd, "built", fd, "free") is True
        assert sorted(os.listdir(tmp_path)) == ["d", "free"]
    finally:
        os.close(fd)


@pytest.mark.parametrize("builder, removed", [("dead", True), ("live", False)])
def test_a_build_left_by_a_crash_does_not_block_removing_its_parent(side, dead_pid, builder,
                                                                      removed):
    root, staging, cache = side
    os.makedirs(os.path.join(root, "p"))
    with open(os.path.join(root, "p", "f"), "wb") as handle:
        handle.write(b"tracked")
    snapshot = scan(root, cache=cache).root
    # What an interrupted build leaves: a temporary directory with content below it; one of a
    # live process (another session on this root) is not touched.
    pid = dead_pid if builder == "dead" else os.getppid()
    leftover = os.path.join(root, "p", f"{transition_module._OWN_BUILD}{pid}-abc0", "sub")
    os.makedirs(leftover)
    with open(os.path.join(leftover, "half"), "wb") as handle:
        handle.write(b"staged content")
    assert scan(root, cache=cache).root == snapshot  # scans never see it
    result = transition(root, [Change("p", snapshot.contents["p"], None)], cache=cache,
                        staging=staging)
    if removed:
        assert result.problems == []
        assert os.listdir(root) == []
    else:
        assert result.problems == [Problem("p", UNKNOWN_CONTENT)]
        assert os.path.isfile(os.path.join(leftover, "half"))
        assert not os.path.exists(os.path.join(root, "p", "f"))  # the tracked file went


def test_a_temporary_name_of_someone_else_is_still_unknown_content(side):
    root, staging, cache = side
    os.makedirs(os.path.join(root, "p", f"{TEMPORARY_PREFIX}other"))
    snapshot = scan(root, cache=cache).root
    result = transition(root, [Change("p", snapshot.contents["p"], None)], cache=cache,
                        staging=staging)
    assert [p.path for p in result.problems] == ["p"]
    assert os.path.isdir(os.path.join(root, "p", f"{TEMPORARY_PREFIX}other"))



def test_a_tree_built_in_a_bind_mounted_root_gets_copies(bind_mounted):
    root, staging = bind_mounted
    cache = DigestCache(XXH)
    new = tree(staging, "d")
    result = transition(root, [Change("d", None, new)], cache=cache, staging=staging)
    assert result.problems == [] and result.results == [Change("d", None, new)]
    assert scan(root, cache=cache).root == Entry.directory({"d": new})
    assert not [p for p in everything(root) if TEMPORARY_PREFIX in p]


@pytest.mark.parametrize("file_mode, executable, expected", [
    (0o600, False, 0o600),  # what staging gives: no chmod needed
    (0o600, True, 0o700),
    (0o644, False, 0o644),
    (0o644, True, 0o755),
    (0o400, False, 0o400),
])
@pytest.mark.parametrize("where", ["new-dir/f", "f"])
def test_placed_files_get_exactly_their_mode(side, file_mode, executable, expected, where):
    root, staging, cache = side
    digest = digest_bytes(b"content", XXH)
    staging.receive(digest, [b"content"])
    entry = Entry(Kind.FILE, digest=digest, executable=executable)
    parent, _, name = where.rpartition("/")
    change = Change(parent, None, Entry.directory({name: entry})) if parent else \
        Change(where, None, entry)
    result = transition(root, [change], cache=cache, staging=staging, default_file_mode=file_mode)
    assert result.problems == []
    st = os.stat(os.path.join(root, where))
    assert st.st_mode & 0o7777 == expected
    assert cache.record(where)[3] == st.st_mode


@pytest.fixture(scope="module")
def dead_pid():
    process = subprocess.Popen(["true"])
    process.wait(timeout=30)
    return process.pid


@pytest.mark.parametrize("name, token, mine, expected", [
    ("{prefix}{dead}-abc0", "abc", False, True),     # its process is gone
    ("{prefix}{live}-abc0", "abc", False, False),    # another live process is building it
    ("{prefix}{me}-old7", "new", True, True),        # this process, an earlier transition
    ("{prefix}{me}-new7", "new", True, False),       # this very transition
    ("{prefix}{me}-new7", "", True, True),           # no token: any build of this process
    ("{prefix}{live}-abc0", "", False, False),
    ("{prefix}x-abc0", "abc", False, False),         # not a name the transition makes
    ("{prefix}{dead}", "abc", False, False),
])
def test_which_build_directories_are_leftovers(dead_pid, name, token, mine, expected):
    text = name.format(prefix=transition_module._OWN_BUILD, dead=dead_pid, live=os.getppid(),
                       me=os.getpid())
    assert transition_module._leftover_build(text, token) is expected


def test_a_crashed_build_is_removed_by_the_next_build_in_its_parent(side, dead_pid):
    root, staging, cache = side
    crashed = os.path.join(root, f"{transition_module._OWN_BUILD}{dead_pid}-abc0")
    running = os.path.join(root, f"{transition_module._OWN_BUILD}{os.getppid()}-abc0")
    for leftover in (crashed, running):
        os.makedirs(os.path.join(leftover, "sub"))
        with open(os.path.join(leftover, "sub", "half"), "wb") as handle:
            handle.write(b"moved out of staging before the crash")
    new = tree(staging, "d")
    result = transition(root, [Change("d", None, new)], cache=cache, staging=staging)
    assert result.problems == []
    assert sorted(os.listdir(root)) == sorted(["d", os.path.basename(running)])
