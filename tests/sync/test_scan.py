"""Scanning a real directory tree: kinds, problems, ignores, temporary names, the digest cache."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.ignore import compile_ignores
from mutagen_actors.actors.sync.model import Counts, Entry, Kind, Problem
from mutagen_actors.actors.sync.scan import ScanError, scan
from mutagen_actors.actors.sync.settings import (
    TEMPORARY_PREFIX,
    HashAlgorithm,
    IgnoreSyntax,
    PermissionsMode,
    SymlinkMode,
)

XXH = HashAlgorithm.XXH128


def digest(data: bytes, algorithm=XXH) -> bytes:
    return digest_bytes(data, algorithm)


def settle(path):
    """Date a file 10 s back: it no longer counts as "just modified" (see racy records)."""
    past = time.time_ns() - 10_000_000_000
    os.utime(path, ns=(past, past))


def build(root, spec: dict):
    """Create a tree from {name: bytes | dict | ("link", target) | ("exec", bytes)}; files are
    settled (dated in the past) unless a test wants them fresh."""
    os.makedirs(root, exist_ok=True)
    for name, value in spec.items():
        path = os.path.join(root, name)
        if isinstance(value, dict):
            build(path, value)
        elif isinstance(value, tuple) and value[0] == "link":
            os.symlink(value[1], path)
        elif isinstance(value, tuple) and value[0] == "exec":
            with open(path, "wb") as handle:
                handle.write(value[1])
            os.chmod(path, 0o755)
            settle(path)
        else:
            with open(path, "wb") as handle:
                handle.write(value)
            os.chmod(path, 0o644)
            settle(path)


def test_each_kind(tmp_path):
    root = str(tmp_path / "root")
    build(root, {"d": {"f": b"data", "x": ("exec", b"#!"), "empty": {}}, "link": ("link", "d/f")})
    os.mkfifo(os.path.join(root, "fifo"))
    result = scan(root, hash=XXH)
    assert result.root == Entry.directory(
        {
            "d": Entry.directory(
                {"f": Entry.file(digest(b"data")), "x": Entry.file(digest(b"#!"), True), "empty": Entry.directory()}
            ),
            "link": Entry.symlink("d/f"),
            "fifo": Entry.untracked(),
        }
    )
    assert result.problems == []
    assert result.counts == Counts(directories=3, files=2, symbolic_links=1, total_file_size=6)
    assert result.hashed == 2


def test_socket_is_untracked():
    root = tempfile.mkdtemp(prefix="mas-")  # short path: socket names are limited to ~108 bytes
    try:
        server = socket.socket(socket.AF_UNIX)
        server.bind(os.path.join(root, "sock"))
        server.close()
        assert scan(root).root == Entry.directory({"sock": Entry.untracked()})
    finally:
        shutil.rmtree(root)


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_hash_algorithms(tmp_path, algorithm):
    build(str(tmp_path), {"f": b"content" * 100000})
    result = scan(str(tmp_path), hash=algorithm)
    assert result.root.contents["f"].digest == digest(b"content" * 100000, algorithm)


@pytest.mark.parametrize(
    "permissions_mode, expected", [(PermissionsMode.PORTABLE, True), (PermissionsMode.MANUAL, False)]
)
def test_executable_bit_only_in_portable_mode(tmp_path, permissions_mode, expected):
    build(str(tmp_path), {"x": ("exec", b"run")})
    result = scan(str(tmp_path), permissions_mode=permissions_mode)
    assert result.root.contents["x"].executable is expected


@pytest.mark.parametrize(
    "mode, target, expected",
    [
        (SymlinkMode.PORTABLE, "f", Entry.symlink("f")),
        (SymlinkMode.PORTABLE, "/etc/passwd", Entry.problematic("invalid symbolic link: target is absolute")),
        (
            SymlinkMode.PORTABLE,
            "../../outside",
            Entry.problematic("invalid symbolic link: target references location outside synchronization root"),
        ),
        (SymlinkMode.POSIX_RAW, "/etc/passwd", Entry.symlink("/etc/passwd")),
        (SymlinkMode.IGNORE, "/etc/passwd", Entry.untracked()),
        (SymlinkMode.IGNORE, "f", Entry.untracked()),
    ],
)
def test_symlink_modes(tmp_path, mode, target, expected):
    build(str(tmp_path), {"d": {"link": ("link", target)}})
    result = scan(str(tmp_path), symlink_mode=mode)
    assert result.root.contents["d"].contents["link"] == expected
    expected_problems = [Problem("d/link", expected.problem)] if expected.kind == Kind.PROBLEMATIC else []
    assert result.problems == expected_problems


def test_temporary_names_are_skipped_entirely(tmp_path):
    build(
        str(tmp_path),
        {f"{TEMPORARY_PREFIX}x": b"t", "d": {f"{TEMPORARY_PREFIX}staging-s-beta": {"f": b"staged"}}, "kept": b"k"},
    )
    result = scan(str(tmp_path))
    assert result.root == Entry.directory({"d": Entry.directory(), "kept": Entry.file(digest(b"k"))})


def test_non_utf8_name_is_problematic_and_the_scan_goes_on(tmp_path):
    root = os.fsencode(str(tmp_path))
    with open(os.path.join(root, b"bad\xff"), "wb") as handle:
        handle.write(b"x")
    os.mkdir(os.path.join(root, b"dir\xfe"))
    with open(os.path.join(root, b"dir\xfe", b"inside"), "wb") as handle:
        handle.write(b"never read")
    build(str(tmp_path), {"good": b"g"})
    result = scan(str(tmp_path))
    assert result.root == Entry.directory(
        {
            "bad\\xff": Entry.problematic("non-UTF-8 filename"),
            "dir\\xfe": Entry.problematic("non-UTF-8 filename"),
            "good": Entry.file(digest(b"g")),
        }
    )
    assert result.problems == [Problem("bad\\xff", "non-UTF-8 filename"), Problem("dir\\xfe", "non-UTF-8 filename")]
    assert result.counts.files == 1


def test_hashed_size_mismatch():
    # /proc files report size 0 to lstat but have content: exactly "the size changed while hashing".
    result = scan("/proc/self/status")
    assert result.root == Entry.problematic("hashed size mismatch")
    assert result.problems == [Problem("", "hashed size mismatch")]


def test_crossing_a_filesystem_boundary_is_problematic():
    root_device = os.lstat("/dev").st_dev
    mounts = sorted(
        item.name
        for item in os.scandir("/dev")
        if item.is_dir(follow_symlinks=False) and item.stat(follow_symlinks=False).st_dev != root_device
    )
    if not mounts:
        pytest.fail("no mount point below /dev on this machine")
    result = scan("/dev", symlink_mode=SymlinkMode.IGNORE)
    for name in mounts:
        assert result.root.contents[name] == Entry.problematic("scan crossed filesystem boundary")
        assert Problem(name, "scan crossed filesystem boundary") in result.problems


_SCAN_AS_NOBODY = """
import json, os, sys
from mutagen_actors.actors.sync.scan import scan
if os.geteuid() == 0:  # imports first: the interpreter itself may live where nobody can read
    os.setgid(65534)
    os.setuid(65534)
result = scan(sys.argv[1])
print(json.dumps({"problems": [[p.path, p.error] for p in result.problems], "files": result.counts.files}))
"""


def _scan_unprivileged(root):
    """Scan as an unprivileged user (root reads everything, so the child drops to nobody)."""
    completed = subprocess.run(
        [sys.executable, "-c", _SCAN_AS_NOBODY, root], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_unreadable_file_and_directory_are_problematic():
    base = tempfile.mkdtemp(prefix="mutagen-actors-scan-")
    try:
        os.chmod(base, 0o755)
        root = os.path.join(base, "root")
        build(root, {"ok": b"fine", "secret": b"no", "closed": {"inside": b"x"}, "listless": {"inside": b"y"}})
        for directory, _, files in os.walk(root):
            os.chmod(directory, 0o755)
        os.chmod(os.path.join(root, "secret"), 0o000)
        os.chmod(os.path.join(root, "closed"), 0o000)  # cannot be opened
        os.chmod(os.path.join(root, "listless"), 0o311)  # can be opened (x) but not listed (no r)
        outcome = _scan_unprivileged(root)
        problems = dict(outcome["problems"])
        assert problems["secret"] == "unable to open file: Permission denied"
        # Directories are opened (O_RDONLY | O_DIRECTORY) before listing: without r, that fails.
        assert problems["closed"] == "unable to open directory: Permission denied"
        assert problems["listless"] == "unable to open directory: Permission denied"
        assert outcome["files"] == 1
    finally:
        for directory, _, _ in os.walk(base):
            os.chmod(directory, 0o755)
        shutil.rmtree(base)


def test_root_states(tmp_path):
    assert scan(str(tmp_path / "missing")).root is None
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with pytest.raises(ScanError, match="is a symbolic link"):
        scan(str(tmp_path / "alias"))
    (tmp_path / "file").write_bytes(b"single")
    result = scan(str(tmp_path / "file"))
    assert result.root == Entry.file(digest(b"single"))
    assert result.counts == Counts(0, 1, 0, 6)
    # Parents of the root may be symlinks.
    (tmp_path / "real" / "f").write_bytes(b"x")
    assert scan(str(tmp_path / "alias" / "f")).root == Entry.file(digest(b"x"))


def test_max_entry_count(tmp_path):
    build(str(tmp_path), {"a": b"1", "b": b"2", "c": {}})
    scan(str(tmp_path), max_entry_count=4)  # root + 3
    with pytest.raises(ScanError, match="exceeded allowed entry count"):
        scan(str(tmp_path), max_entry_count=3)


def test_unchanged_files_are_never_rehashed(tmp_path):
    root = str(tmp_path / "root")
    build(root, {"a": b"1", "d": {"b": b"2", "c": b"3"}})
    cache = DigestCache(XXH)
    first = scan(root, cache=cache)
    assert first.hashed == 3
    second = scan(root, cache=cache)
    assert second.hashed == 0
    assert second.root == first.root
    # Content change: only that file is read.
    with open(os.path.join(root, "d", "b"), "wb") as handle:
        handle.write(b"22")
    settle(os.path.join(root, "d", "b"))
    third = scan(root, cache=cache)
    assert third.hashed == 1
    assert third.root.contents["d"].contents["b"] == Entry.file(digest(b"22"))
    # Metadata-only change (mtime): re-read, same digest.
    os.utime(os.path.join(root, "a"), ns=(1, 1))
    fourth = scan(root, cache=cache)
    assert fourth.hashed == 1
    assert fourth.root == third.root
    # Deleted files leave the cache.
    os.unlink(os.path.join(root, "a"))
    scan(root, cache=cache)
    assert "a" not in cache


def test_cache_persists_across_processes(tmp_path):
    root = str(tmp_path / "root")
    build(root, {"a": b"1", "b": b"2"})
    file = str(tmp_path / "cache")
    scan(root, cache=DigestCache(XXH)).cache.save(file)
    assert scan(root, cache=DigestCache.load(file, XXH)).hashed == 0
    # A cache of another algorithm is not trusted.
    assert scan(root, hash=HashAlgorithm.SHA1, cache=DigestCache.load(file, XXH)).hashed == 2


def test_ignored_paths_are_untracked_and_not_traversed(tmp_path):
    root = str(tmp_path)
    build(root, {"keep.py": b"k", "x.pyc": b"c", "node_modules": {"pkg": {"f": b"f"}}, "src": {"y.pyc": b"y"}})
    ignorer = compile_ignores(["*.pyc", "node_modules"], IgnoreSyntax.MUTAGEN, False)
    result = scan(root, ignorer=ignorer)
    assert result.root == Entry.directory(
        {
            "keep.py": Entry.file(digest(b"k")),
            "x.pyc": Entry.untracked(),
            "node_modules": Entry.untracked(),
            "src": Entry.directory({"y.pyc": Entry.untracked()}),
        }
    )
    assert result.hashed == 1


def test_vcs_ignore(tmp_path):
    build(str(tmp_path), {".git": {"HEAD": b"ref"}, "f": b"x"})
    result = scan(str(tmp_path), ignorer=compile_ignores([], IgnoreSyntax.MUTAGEN, True))
    assert result.root.contents[".git"] == Entry.untracked()


def test_docker_reinclusion_traverses_phantom_directories(tmp_path):
    build(str(tmp_path), {"build": {"keep.txt": b"k", "junk.o": b"j"}, "other": {"a": b"a"}})
    ignorer = compile_ignores(["build", "!build/keep.txt", "other"], IgnoreSyntax.DOCKER, False)
    result = scan(str(tmp_path), ignorer=ignorer)
    assert result.root == Entry.directory(
        {
            "build": Entry.phantom({"keep.txt": Entry.file(digest(b"k")), "junk.o": Entry.untracked()}),
            "other": Entry.untracked(),
        }
    )


def test_just_modified_files_are_hashed_until_they_settle(tmp_path):
    # A second write in the same timestamp tick keeps size and mtime: a record taken while a
    # file is that fresh is never trusted on metadata alone.
    path = tmp_path / "fresh"
    path.write_bytes(b"v1")
    cache = DigestCache(XXH)
    assert scan(str(tmp_path), cache=cache).hashed == 1
    before = os.lstat(path)
    path.write_bytes(b"v2")  # same size; put the old mtime back, as a fast second write would
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = scan(str(tmp_path), cache=cache)
    assert again.hashed == 1
    assert again.root.contents["fresh"] == Entry.file(digest(b"v2"))
    settle(path)
    scan(str(tmp_path), cache=cache)
    assert scan(str(tmp_path), cache=cache).hashed == 0
