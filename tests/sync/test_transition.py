"""Applying changes on a real filesystem: safety first (invariants 1 and 6), then correctness."""

import os
import stat
import time

import pytest

from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry, Kind, Problem
from mutagen_actors.actors.sync.scan import scan
from mutagen_actors.actors.sync.settings import TEMPORARY_PREFIX, HashAlgorithm, PermissionsMode, SymlinkMode
from mutagen_actors.actors.sync.staging import Staging
from mutagen_actors.actors.sync.transition import transition

XXH = HashAlgorithm.XXH128


class Side:
    """One endpoint on disk: root, digest cache, staging store."""

    def __init__(self, base, name="root"):
        self.root = str(base / name)
        self.cache = DigestCache(XXH)
        self.staging = Staging(str(base / f"staging-{name}"), XXH)

    def write(self, path, data: bytes, mode=0o644, settled=True):
        """Write a file; ``settled`` dates it 10 s back (older than the "racy" window)."""
        full = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)
        os.chmod(full, mode)
        if settled:
            past = time.time_ns() - 10_000_000_000 - len(data)  # distinct per content length
            os.utime(full, ns=(past, past))

    def read(self, path) -> bytes:
        with open(os.path.join(self.root, path), "rb") as handle:
            return handle.read()

    def scan(self) -> Entry:
        return scan(self.root, cache=self.cache).root

    def stage(self, data: bytes) -> Entry:
        digest = digest_bytes(data, XXH)
        self.staging.receive(digest, [data])
        return Entry.file(digest)

    def apply(self, changes, **settings):
        return transition(self.root, changes, cache=self.cache, staging=self.staging, hash=XXH, **settings)

    def names(self, path=""):
        return sorted(os.listdir(os.path.join(self.root, path)))


@pytest.fixture
def side(tmp_path):
    value = Side(tmp_path)
    os.mkdir(value.root)
    return value


def file_entry(data: bytes, executable=False) -> Entry:
    return Entry.file(digest_bytes(data, XXH), executable)


# -- the safety tests ------------------------------------------------------------------

def test_file_modified_between_scan_and_apply_survives(side):
    side.write("f", b"original")
    side.write("g", b"to delete")
    snapshot = side.scan()
    side.write("f", b"edited by the user")  # after the scan, before the transition
    side.write("g", b"also edited")
    new = side.stage(b"from the other side")
    result = side.apply([Change("f", snapshot.contents["f"], new), Change("g", snapshot.contents["g"], None)])
    assert side.read("f") == b"edited by the user"
    assert side.read("g") == b"also edited"
    assert result.problems == [Problem("f", "modification detected"), Problem("g", "modification detected")]
    assert [change.new for change in result.results] == [snapshot.contents["f"], snapshot.contents["g"]]


@pytest.mark.parametrize(
    "edit",
    [
        lambda side: os.utime(os.path.join(side.root, "f"), ns=(5, 5)),  # same content, new mtime
        lambda side: os.chmod(os.path.join(side.root, "f"), 0o600),  # mode only
        lambda side: (os.unlink(os.path.join(side.root, "f")), side.write("f", b"original")),  # new inode
    ],
    ids=["mtime", "mode", "inode"],
)
def test_any_metadata_change_counts_as_modification(side, edit):
    side.write("f", b"original")
    snapshot = side.scan()
    edit(side)
    result = side.apply([Change("f", snapshot.contents["f"], side.stage(b"new"))])
    assert side.read("f") == b"original"
    assert result.problems == [Problem("f", "modification detected")]


def test_directory_that_gained_an_unknown_file_is_not_removed(side):
    side.write("d/known", b"k")
    side.write("d/sub/deeper", b"x")
    snapshot = side.scan()
    side.write("d/sub/surprise", b"created after the scan")
    result = side.apply([Change("d", snapshot.contents["d"], None)])
    assert side.read("d/sub/surprise") == b"created after the scan"
    assert not os.path.exists(os.path.join(side.root, "d", "known"))  # known content went
    assert not os.path.exists(os.path.join(side.root, "d", "sub", "deeper"))
    assert Problem("d/sub", "unknown content encountered on disk") in result.problems
    # What remains is recorded (no untracked content in it: it is for the ancestor).
    assert result.results[0].new == Entry.directory({"sub": Entry.directory()})


def test_symlinked_parent_pointing_outside_is_never_written_through(side, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"precious")
    os.symlink(str(outside), os.path.join(side.root, "escape"))
    changes = [
        Change("escape/new", None, side.stage(b"intruder")),
        Change("escape/victim", file_entry(b"precious"), None),
        Change("escape/victim", file_entry(b"precious"), side.stage(b"overwrite")),
        Change("escape/dir", None, Entry.directory({"f": side.stage(b"x")})),
    ]
    result = side.apply(changes)
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_bytes() == b"precious"
    assert [problem.error for problem in result.problems] == ["path component is a symbolic link: escape"] * 4
    assert [change.new for change in result.results] == [change.old for change in changes]


@pytest.mark.parametrize("path", ["../escaped", "a/../../escaped", "/tmp/escaped-absolute", "a\x00b", "a//b"])
def test_dot_dot_and_absolute_paths_are_refused(side, tmp_path, path):
    os.mkdir(os.path.join(side.root, "a"))
    result = side.apply([Change(path, None, side.stage(b"bad"))])
    assert result.results == []  # nothing happened there, nothing to record
    assert len(result.problems) == 1 and result.problems[0].path == path
    assert "invalid path" in result.problems[0].error
    assert not os.path.exists(tmp_path / "escaped")
    assert not os.path.exists("/tmp/escaped-absolute")
    assert side.names() == ["a"] and side.names("a") == []


# -- creation ----------------------------------------------------------------------------------

def test_create_tree_with_default_modes(side):
    tree = Entry.directory(
        {
            "plain": side.stage(b"plain"),
            "tool": Entry.file(side.stage(b"#!/bin/sh").digest, True),
            "sub": Entry.directory({"link": Entry.symlink("../plain")}),
        }
    )
    result = side.apply([Change("d", None, tree)])
    assert result.problems == [] and not result.missing_staged
    assert result.results == [Change("d", None, tree)]
    assert side.read("d/plain") == b"plain"
    mode = lambda path: stat.S_IMODE(os.lstat(os.path.join(side.root, path)).st_mode)  # noqa: E731
    assert mode("d/plain") == 0o600
    assert mode("d/tool") == 0o700
    assert mode("d") == 0o700 and mode("d/sub") == 0o700
    assert os.readlink(os.path.join(side.root, "d/sub/link")) == "../plain"
    # A scan now sees exactly what was recorded, and the cache knows the new files.
    after = scan(side.root, cache=side.cache)
    assert after.root.contents["d"] == tree
    assert "d/plain" in side.cache and "d/tool" in side.cache


def test_custom_default_modes_and_manual_permissions(side):
    new = Entry.file(side.stage(b"x").digest, True)
    result = side.apply(
        [Change("f", None, new), Change("d", None, Entry.directory())],
        default_file_mode=0o640,
        default_directory_mode=0o750,
        permissions_mode=PermissionsMode.MANUAL,
    )
    assert result.problems == []
    assert stat.S_IMODE(os.lstat(os.path.join(side.root, "f")).st_mode) == 0o640
    assert stat.S_IMODE(os.lstat(os.path.join(side.root, "d")).st_mode) == 0o750


@pytest.mark.skipif(os.geteuid() != 0, reason="changing ownership needs root")
def test_default_owner_and_group(side):
    result = side.apply(
        [Change("d", None, Entry.directory({"f": side.stage(b"x"), "l": Entry.symlink("f")}))],
        default_owner="id:65534",
        default_group=65534,
    )
    assert result.problems == []
    for path in ("d", "d/f", "d/l"):
        st = os.lstat(os.path.join(side.root, path))
        assert (st.st_uid, st.st_gid) == (65534, 65534)


def test_new_file_never_replaces_something_that_appeared(side):
    snapshot = side.scan()
    side.write("f", b"the user's new file")
    result = side.apply([Change("f", snapshot.contents.get("f"), side.stage(b"ours"))])
    assert side.read("f") == b"the user's new file"
    assert result.problems == [Problem("f", "modification detected")]
    assert result.results == [Change("f", None, None)]
    assert [n for n in side.names() if n.startswith(TEMPORARY_PREFIX)] == []


def test_missing_parent_is_reported_not_created(side):
    result = side.apply([Change("gone/f", None, side.stage(b"x"))])
    assert result.problems == [Problem("gone/f", "parent path does not exist")]
    assert side.names() == []


def test_root_creation(tmp_path):
    side = Side(tmp_path, "fresh")
    tree = Entry.directory({"f": side.stage(b"hello")})
    result = side.apply([Change("", None, tree)])
    assert result.problems == []
    assert result.results == [Change("", None, tree)]
    assert side.read("f") == b"hello"


def test_symlink_creation_is_validated(side):
    result = side.apply(
        [Change("abs", None, Entry.symlink("/etc/passwd")), Change("ok", None, Entry.symlink("x"))],
        symlink_mode=SymlinkMode.PORTABLE,
    )
    assert [p.path for p in result.problems] == ["abs"]
    assert "not portable" in result.problems[0].error
    assert side.names() == ["ok"]
    raw = side.apply([Change("abs", None, Entry.symlink("/etc/passwd"))], symlink_mode=SymlinkMode.POSIX_RAW)
    assert raw.problems == [] and os.readlink(os.path.join(side.root, "abs")) == "/etc/passwd"


# -- swaps and removals ------------------------------------------------------------------------

def test_swap_replaces_content_with_default_mode(side):
    side.write("f", b"old", mode=0o664)
    snapshot = side.scan()
    new = side.stage(b"new content")
    result = side.apply([Change("f", snapshot.contents["f"], new)])
    assert result.problems == []
    assert side.read("f") == b"new content"
    assert stat.S_IMODE(os.lstat(os.path.join(side.root, "f")).st_mode) == 0o600
    assert result.results == [Change("f", snapshot.contents["f"], new)]
    assert side.cache.get("f").digest == new.digest


def test_executable_bit_only_change_is_chmod_in_place(side):
    side.write("f", b"script", mode=0o644)
    snapshot = side.scan()
    inode = os.lstat(os.path.join(side.root, "f")).st_ino
    result = side.apply([Change("f", snapshot.contents["f"], file_entry(b"script", True))])
    assert result.problems == [] and not result.missing_staged
    st = os.lstat(os.path.join(side.root, "f"))
    assert st.st_ino == inode and stat.S_IMODE(st.st_mode) == 0o755
    back = side.apply([Change("f", file_entry(b"script", True), file_entry(b"script"))])
    assert back.problems == []
    assert stat.S_IMODE(os.lstat(os.path.join(side.root, "f")).st_mode) == 0o644


def test_symlink_with_changed_target_is_not_removed(side):
    os.symlink("a", os.path.join(side.root, "l"))
    snapshot = side.scan()
    os.unlink(os.path.join(side.root, "l"))
    os.symlink("b", os.path.join(side.root, "l"))
    result = side.apply([Change("l", snapshot.contents["l"], None)])
    assert os.readlink(os.path.join(side.root, "l")) == "b"
    assert result.problems == [Problem("l", "modification detected")]


def test_untracked_content_blocks_directory_removal(side):
    side.write("d/f", b"f")
    os.mkfifo(os.path.join(side.root, "d", "pipe"))
    snapshot = side.scan()
    assert snapshot.contents["d"].contents["pipe"].kind == Kind.UNTRACKED
    result = side.apply([Change("d", snapshot.contents["d"], None)])
    assert side.names("d") == ["pipe"]
    assert result.results[0].new == Entry.directory()


def test_kind_change_removes_then_creates(side):
    side.write("x/inner", b"i")
    snapshot = side.scan()
    new = side.stage(b"now a file")
    result = side.apply([Change("x", snapshot.contents["x"], new)])
    assert result.problems == []
    assert side.read("x") == b"now a file"


def test_file_deleted_since_scan_is_not_recreated_by_a_swap(side):
    side.write("f", b"old")
    snapshot = side.scan()
    os.unlink(os.path.join(side.root, "f"))
    result = side.apply([Change("f", snapshot.contents["f"], side.stage(b"new"))])
    assert side.names() == []
    assert result.problems == [Problem("f", "modification detected")]
    assert result.results == [Change("f", snapshot.contents["f"], None)]


def test_directory_to_directory_change_applies_the_differences(side):
    side.write("d/keep", b"k")
    side.write("d/drop", b"d")
    snapshot = side.scan()
    target = Entry.directory({"keep": file_entry(b"k"), "add": side.stage(b"a")})
    result = side.apply([Change("d", snapshot.contents["d"], target)])
    assert result.problems == []
    assert side.names("d") == ["add", "keep"]
    assert result.results[0].new == target


# -- staging -----------------------------------------------------------------------------------

def test_missing_staged_file(side):
    result = side.apply([Change("f", None, file_entry(b"never staged"))])
    assert result.missing_staged
    assert result.problems == [Problem("f", "staged file missing")]
    assert result.results == [Change("f", None, None)]
    assert side.names() == []


def test_corrupt_staged_file_is_never_used(side):
    entry = side.stage(b"good")
    with open(side.staging.path_for(entry.digest), "wb") as handle:
        handle.write(b"tampered")
    result = side.apply([Change("f", None, entry)])
    assert result.problems == [Problem("f", "staged file does not match its digest")]
    assert side.names() == []


def test_same_content_at_several_paths(side):
    entry = side.stage(b"shared")
    result = side.apply([Change("a", None, entry), Change("b", None, entry), Change("c", None, Entry.directory({"d": entry}))])
    assert result.problems == []
    assert side.read("a") == side.read("b") == side.read("c/d") == b"shared"
    assert os.lstat(os.path.join(side.root, "a")).st_ino != os.lstat(os.path.join(side.root, "b")).st_ino


def test_verification_without_a_cache_record_hashes_the_file(side):
    side.write("f", b"old")
    snapshot = side.scan()
    side.cache.discard("f")  # e.g. the cache file was lost
    result = side.apply([Change("f", snapshot.contents["f"], side.stage(b"new"))])
    assert result.problems == [] and side.read("f") == b"new"


def test_temporaries_left_by_a_crash_do_not_block_directory_removal(side):
    side.write("d/f", b"f")
    snapshot = side.scan()
    side.write(f"d/{TEMPORARY_PREFIX}new-0123456789abcdef", b"half-written by a killed transition")
    side.write(f"d/{TEMPORARY_PREFIX}staging-other", b"not ours to delete")
    result = side.apply([Change("d", snapshot.contents["d"], None)])
    assert side.names("d") == [f"{TEMPORARY_PREFIX}staging-other"]
    assert result.problems == [Problem("d", "unknown content encountered on disk")]
    os.unlink(os.path.join(side.root, "d", f"{TEMPORARY_PREFIX}staging-other"))
    result = side.apply([Change("d", Entry.directory(), None)])
    assert result.problems == [] and side.names() == []


def test_racy_record_is_verified_by_content(side):
    # Hashed while fresh, then rewritten with the same size and mtime: metadata cannot tell,
    # so the transition hashes the file and keeps the user's content.
    side.write("f", b"aaaa", settled=False)
    snapshot = side.scan()
    before = os.lstat(os.path.join(side.root, "f"))
    side.write("f", b"bbbb", settled=False)
    os.utime(os.path.join(side.root, "f"), ns=(before.st_atime_ns, before.st_mtime_ns))
    result = side.apply([Change("f", snapshot.contents["f"], side.stage(b"theirs"))])
    assert side.read("f") == b"bbbb"
    assert result.problems == [Problem("f", "modification detected")]


def test_staging_on_another_filesystem_is_copied(side, tmp_path):
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(side.root).st_dev:
        pytest.fail("this test needs /dev/shm on another filesystem than the temporary directory")
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="mutagen-actors-test-staging-", dir=shm)
    try:
        side.staging = Staging(directory, XXH)
        entry = side.stage(b"crosses devices")
        result = side.apply([Change("f", None, entry)])
        assert result.problems == []
        assert side.read("f") == b"crosses devices"
        assert [n for n in side.names() if n.startswith(TEMPORARY_PREFIX)] == []
    finally:
        shutil.rmtree(directory)
