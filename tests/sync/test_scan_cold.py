"""The cold scan (no cache record): a listed regular file is opened, fstat-ed and read without an
lstat; what is recorded must be the file that was read, whatever happened since it was listed."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest

from mutagen_actors.actors.sync.cache import RACY_MTIME, DigestCache
from mutagen_actors.actors.sync.hashing import BLOCK_SIZE, digest_bytes
from mutagen_actors.actors.sync.ignore import compile_ignores
from mutagen_actors.actors.sync.model import Counts, Entry, Kind
from mutagen_actors.actors.sync.scan import SIZE_MISMATCH, _Walker, scan
from mutagen_actors.actors.sync.settings import (
    TEMPORARY_PREFIX,
    HashAlgorithm,
    IgnoreSyntax,
    PermissionsMode,
    SymlinkMode,
)

XXH = HashAlgorithm.XXH128
PAST_NS = time.time_ns() - 100_000_000_000


def _file(path, data: bytes, mode: int = 0o644, mtime_ns: int = PAST_NS) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)
    os.utime(path, ns=(mtime_ns, mtime_ns))


# -- the tree changes between the listing and the open -------------------------------------------

class _Listing(list):
    """A finished listing, usable where the walker expects ``os.scandir``'s object."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _MeddlingWalker(_Walker):
    """A walker whose tree is changed by ``meddle`` right after each directory is listed."""

    def __init__(self, meddle, device):
        super().__init__(XXH, None, SymlinkMode.PORTABLE, PermissionsMode.PORTABLE, {}, {}, {}, {}, device)
        self.meddle = meddle

    def list_directory(self, dfd):
        with os.scandir(dfd) as listing:
            items = _Listing(listing)
        self.meddle()
        return items


def _scan_meddled(root: str, meddle):
    """``(entry, problems, records of the root directory)`` of a full scan of ``root`` whose
    directories are changed by ``meddle`` between their listing and the reading of their files."""
    walker = _MeddlingWalker(meddle, os.lstat(root).st_dev)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        entry, subtotal = walker.directory(fd, "")
    finally:
        os.close(fd)
    return entry, subtotal, walker.problems, walker.out.get("", {})


def _replace_with_file(path):
    os.unlink(path)
    _file(path, b"replaced, and longer than before")


def _grow(path):
    with open(path, "ab") as handle:
        handle.write(b" and more")


def _replace_with_directory(path):
    os.unlink(path)
    os.mkdir(path)


def _replace_with_symlink(path):
    os.unlink(path)
    os.symlink("elsewhere", path)


def _replace_with_fifo(path):
    os.unlink(path)
    os.mkfifo(path)


@pytest.mark.parametrize(
    "change, expected_entry, expected_problem",
    [
        (_replace_with_file, Entry.file(digest_bytes(b"replaced, and longer than before", XXH)), None),
        (_grow, Entry.file(digest_bytes(b"original and more", XXH)), None),
        (_replace_with_directory, Entry.problematic("file changed type during scan"), "file changed type during scan"),
        (_replace_with_fifo, Entry.problematic("file changed type during scan"), "file changed type during scan"),
        (
            _replace_with_symlink,
            Entry.problematic(f"unable to open file: {os.strerror(errno.ELOOP)}"),
            f"unable to open file: {os.strerror(errno.ELOOP)}",
        ),
        (os.unlink, None, None),
    ],
    ids=["other file", "grown", "directory", "fifo", "symlink", "removed"],
)
def test_file_changed_between_listing_and_open(tmp_path, change, expected_entry, expected_problem):
    target = tmp_path / "target"
    _file(target, b"original")
    _file(tmp_path / "steady", b"steady")
    entry, subtotal, problems, records = _scan_meddled(str(tmp_path), lambda: change(str(target)))
    assert entry.contents.get("target") == expected_entry
    assert entry.contents["steady"] == Entry.file(digest_bytes(b"steady", XXH))
    assert problems == ({} if expected_problem is None else {"target": expected_problem})
    if expected_entry is not None and expected_entry.kind is Kind.FILE:
        # The record describes the file that was read (its inode and size), not the one listed.
        now = os.lstat(target)
        record = DigestCache(XXH, {"": records}).record("target")
        assert (record.size, record.inode, record.mode) == (now.st_size, now.st_ino, now.st_mode)
        assert subtotal == (1, 2, 0, now.st_size + len(b"steady"))
    else:
        assert "target" not in records
        assert subtotal == (1, 1, 0, len(b"steady"))


# -- the file changes while it is read ------------------------------------------------------------

_TOGGLER = """
import os, sys
path, small, large = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_WRONLY)
tail = b"t" * (large - small)
print("ready", flush=True)
while True:
    os.pwrite(fd, tail, small)
    os.ftruncate(fd, small)
"""


def test_file_growing_and_shrinking_while_read_is_never_recorded_inconsistently(tmp_path):
    # Another process makes the file alternate between its first 4 KiB and 8 KiB (the same
    # first 4 KiB): every scan must see one of those two whole states, or report the mismatch.
    small, large = 4096, 8192
    head = b"h" * small
    path = tmp_path / "moving"
    _file(path, head)
    states = {
        digest_bytes(head, XXH): small,
        digest_bytes(head + b"t" * (large - small), XXH): large,
    }
    toggler = subprocess.Popen(
        [sys.executable, "-c", _TOGGLER, str(path), str(small), str(large)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert toggler.stdout.readline().strip() == "ready"
        seen = set()
        deadline = time.monotonic() + 30
        while not {"mismatch", small, large} <= seen:
            assert time.monotonic() < deadline, f"only saw {seen}"
            result = scan(str(tmp_path), cache=DigestCache(XXH))
            entry = result.root.contents["moving"]
            if entry.kind is Kind.PROBLEMATIC:
                assert entry.problem == SIZE_MISMATCH
                assert "moving" not in result.cache
                seen.add("mismatch")
            else:
                size = states[entry.digest]  # KeyError: a digest of neither whole state
                assert result.cache.record("moving").size == size
                assert result.counts.total_file_size == size
                seen.add(size)
    finally:
        toggler.kill()
        toggler.wait(timeout=30)
        toggler.stdout.close()


# -- racy modification times ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "age_ns, whole_second, racy",
    [
        (100_000_000_000, False, False),  # long settled
        (100_000_000_000, True, False),
        (3_000_000_000, True, False),  # a whole-second stamp just outside the 2 s window
        (500_000_000, True, True),  # inside it: a same-second second write would be invisible
        (500_000_000, False, False),  # a sub-second stamp: only the last 100 ms are racy
        (0, True, True),
        (-60_000_000_000, False, True),  # dated in the future
        (-60_000_000_000, True, True),
    ],
)
def test_racy_mtime_on_a_cold_scan(tmp_path, age_ns, whole_second, racy):
    mtime = time.time_ns() - age_ns
    if whole_second:
        mtime -= mtime % 1_000_000_000
    elif mtime % 1_000_000_000 == 0:
        mtime += 1
    _file(tmp_path / "f", b"data", mtime_ns=mtime)
    cache = DigestCache(XXH)
    first = scan(str(tmp_path), cache=cache)
    assert first.hashed == 1
    assert cache.record("f").mtime_ns == (RACY_MTIME if racy else mtime)
    again = scan(str(tmp_path), cache=cache)
    assert again.hashed == (1 if racy else 0)
    assert again.root == first.root


# -- the cold path and the lstat path agree -------------------------------------------------------

def _mixed_tree(root):
    os.makedirs(root / "sub" / "deeper")
    _file(root / "plain", b"plain")
    _file(root / "empty", b"")
    _file(root / "tool", b"#!/bin/sh\n", mode=0o755)
    _file(root / "big", os.urandom(BLOCK_SIZE + 12345))
    _file(root / "exactly-a-block", os.urandom(BLOCK_SIZE))
    _file(root / "skipped.log", b"ignored")
    _file(root / (TEMPORARY_PREFIX + "x"), b"temporary")
    _file(root / "sub" / "inner", b"inner")
    _file(root / "sub" / "deeper" / "leaf", b"leaf")
    os.symlink("plain", root / "link")
    os.mkfifo(root / "pipe")


@pytest.mark.parametrize("permissions_mode", list(PermissionsMode))
@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_cold_scan_equals_a_scan_through_stale_records(tmp_path, algorithm, permissions_mode):
    _mixed_tree(tmp_path)
    ignorer = compile_ignores(["*.log"], IgnoreSyntax.MUTAGEN, False)
    cold = scan(str(tmp_path), hash=algorithm, ignorer=ignorer, permissions_mode=permissions_mode,
                cache=DigestCache(algorithm))
    # Every record made stale (another mtime): the next scan lstat-s and re-hashes each file.
    for directory, _, names in os.walk(tmp_path):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                os.utime(path, ns=(PAST_NS - 10**9, PAST_NS - 10**9))
    stale = scan(str(tmp_path), hash=algorithm, ignorer=ignorer, permissions_mode=permissions_mode,
                 cache=cold.cache)
    assert stale.hashed == cold.hashed == 7
    assert stale.root == cold.root
    assert stale.counts == cold.counts == Counts(3, 7, 1, cold.counts.total_file_size)
    assert stale.problems == cold.problems == []
    assert cold.root.contents["skipped.log"] == Entry.untracked()
    assert cold.root.contents["tool"].executable is (permissions_mode is PermissionsMode.PORTABLE)
    assert cold.root.contents["big"].digest == digest_bytes((tmp_path / "big").read_bytes(), algorithm)
