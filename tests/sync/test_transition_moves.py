"""How staged content reaches its place (transition ``place``): the staged file itself moves with
one rename when staging shares the root's filesystem; a copy under a temporary name otherwise.
Either way: verified first, final mode set, never replacing a name that appeared, nothing
partial or temporary left behind."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from mutagen_actors.actors.sync import transition as transition_module
from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry, Kind, Problem
from mutagen_actors.actors.sync.permissions import new_file_mode
from mutagen_actors.actors.sync.settings import DEFAULT_FILE_MODE, HashAlgorithm, PermissionsMode
from mutagen_actors.actors.sync.staging import Staging
from mutagen_actors.actors.sync.transition import STAGED_MISMATCH, transition

XXH = HashAlgorithm.XXH128


def other_filesystem(tmp_path) -> str:
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's temporary directory")
    return tempfile.mkdtemp(prefix="ma-moves-", dir="/dev/shm")


@pytest.fixture(params=["renameat2", "link"])
def rename_kind(request, monkeypatch):
    """Both ways of a rename that never replaces: the kernel's, and hard link + unlink."""
    if request.param == "link":
        monkeypatch.setattr(transition_module, "_renameat2", None)
    elif transition_module._renameat2 is None:
        pytest.skip("no renameat2 here")
    return request.param


@pytest.fixture(params=["same", "other"])
def setup(request, tmp_path):
    """(root, staging) on one filesystem, or staging on another one."""
    root = tmp_path / "root"
    root.mkdir()
    if request.param == "same":
        yield request.param, str(root), Staging(str(tmp_path / "staging"), XXH)
    else:
        elsewhere = other_filesystem(tmp_path)
        yield request.param, str(root), Staging(os.path.join(elsewhere, "staging"), XXH)
        shutil.rmtree(elsewhere, ignore_errors=True)


def stage(staging: Staging, data: bytes) -> Entry:
    digest = digest_bytes(data, XXH)
    staging.receive(digest, [data])
    return Entry(Kind.FILE, digest=digest, executable=False)


def run(root, staging, changes, cache=None):
    return transition(root, changes, cache=cache if cache is not None else DigestCache(XXH), staging=staging, hash=XXH)


def test_new_files_arrive_verified_with_their_mode_and_nothing_left(setup, rename_kind):
    kind, root, staging = setup
    one, two = stage(staging, b"one"), stage(staging, b"two" * 1000)
    staged_inode = os.stat(staging.path_for(one.digest)).st_ino
    tree = Entry(Kind.DIRECTORY, {"a.txt": one, "d": Entry(Kind.DIRECTORY, {"b.bin": two})})
    cache = DigestCache(XXH)
    result = run(root, staging, [Change("x", None, tree)], cache)
    assert result.problems == [] and result.results == [Change("x", None, tree)]
    assert sorted(os.listdir(root)) == ["x"]
    assert sorted(os.listdir(os.path.join(root, "x"))) == ["a.txt", "d"]  # no temporaries
    assert os.listdir(os.path.join(root, "x", "d")) == ["b.bin"]
    with open(os.path.join(root, "x", "a.txt"), "rb") as handle:
        assert handle.read() == b"one"
    st = os.stat(os.path.join(root, "x", "a.txt"))
    assert st.st_mode & 0o777 == new_file_mode(DEFAULT_FILE_MODE, False, PermissionsMode.PORTABLE)
    # The cache records what is on disk now.
    record = cache.record("x/a.txt")
    assert (record[0], record[2], record[3], record[4]) == (3, st.st_ino, st.st_mode, one.digest)
    # Same filesystem: moved (the staged inode itself); another one: copied, staging keeps it.
    assert (st.st_ino == staged_inode) == (kind == "same")
    assert staging.has(one.digest) == (kind == "other")


def test_a_name_that_appeared_since_the_scan_is_never_replaced(setup, rename_kind):
    kind, root, staging = setup
    new = stage(staging, b"theirs")
    with open(os.path.join(root, "f"), "wb") as handle:
        handle.write(b"mine")
    result = run(root, staging, [Change("f", None, new)])
    assert [p.path for p in result.problems] == ["f"]
    assert result.results == [Change("f", None, None)]
    with open(os.path.join(root, "f"), "rb") as handle:
        assert handle.read() == b"mine"
    assert os.listdir(root) == ["f"]  # no temporary left


# How staged content can be damaged after it took its digest name: another size (caught by the
# size the store verified), or other bytes of the same size in a file that an earlier process
# staged (no verified size here: the transition hashes it).
DAMAGE = {
    "other size": (b"bad content, longer", False),
    "same size, staged by an earlier process": (b"bad content!", True),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_staged_content_is_never_placed_and_is_dropped(setup, damage):
    kind, root, staging = setup
    new = stage(staging, b"good content")
    bad, restarted = DAMAGE[damage]
    with open(staging.path_for(new.digest), "wb") as handle:
        handle.write(bad)
    if restarted:
        staging = Staging(staging.directory, XXH)
    result = run(root, staging, [Change("f", None, new)])
    assert result.problems == [Problem("f", STAGED_MISMATCH)]
    assert os.listdir(root) == []
    assert not staging.has(new.digest)  # the next cycle fetches it again


def test_content_used_twice_is_copied_once_and_moved_once(setup):
    kind, root, staging = setup
    same = stage(staging, b"twice")
    tree = Entry(Kind.DIRECTORY, {"a": same, "b": same})
    result = run(root, staging, [Change("d", None, tree)])
    assert result.problems == []
    for name in ("a", "b"):
        with open(os.path.join(root, "d", name), "rb") as handle:
            assert handle.read() == b"twice"
    a, b = (os.stat(os.path.join(root, "d", n)) for n in ("a", "b"))
    assert a.st_ino != b.st_ino  # two files, not two names of one


def test_a_swap_replaces_the_old_file_atomically(setup, rename_kind):
    kind, root, staging = setup
    path = os.path.join(root, "f")
    with open(path, "wb") as handle:
        handle.write(b"old")
    past = 1_600_000_000_000_000_000
    os.utime(path, ns=(past, past))
    cache = DigestCache(XXH)
    old_digest = digest_bytes(b"old", XXH)
    cache.put_stat("f", os.stat(path), old_digest)
    old = Entry(Kind.FILE, digest=old_digest, executable=False)
    new = stage(staging, b"new content")
    result = run(root, staging, [Change("f", old, new)], cache)
    assert result.problems == [] and result.results == [Change("f", old, new)]
    with open(path, "rb") as handle:
        assert handle.read() == b"new content"
    assert os.listdir(root) == ["f"]



def test_a_bind_mounted_root_gets_copies_when_a_rename_cannot_reach_it(bind_mounted):
    root, staging = bind_mounted
    assert os.stat(root).st_dev == os.stat(os.path.dirname(staging.directory)).st_dev
    cache = DigestCache(XXH)
    first = stage(staging, b"new file")
    result = run(root, staging, [Change("f", None, first)], cache)
    assert result.problems == [] and result.results == [Change("f", None, first)]
    second = stage(staging, b"swapped in")
    result = run(root, staging, [Change("f", first, second)], cache)
    assert result.problems == [] and result.results == [Change("f", first, second)]
    with open(os.path.join(root, "f"), "rb") as handle:
        assert handle.read() == b"swapped in"
    assert os.listdir(root) == ["f"]  # no temporary left
