"""A big full scan walks part of the tree in a forked child (actors/sync/scan_split.py): whatever
the tree and whatever happens to the child, the result equals a serial scan's, no child is left
behind (no zombie, no descriptor), and a small tree never forks."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import pytest
import structlog.testing

from mutagen_actors.actors.sync import scan as scan_module
from mutagen_actors.actors.sync import scan_split
from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.actors.sync.ignore import compile_ignores
from mutagen_actors.actors.sync.model import Kind, walk
from mutagen_actors.actors.sync.scan import CROSSED_FILESYSTEM, NON_UTF8, TOO_DEEP, scan
from mutagen_actors.actors.sync.settings import (
    TEMPORARY_PREFIX,
    HashAlgorithm,
    IgnoreSyntax,
    PermissionsMode,
    SymlinkMode,
)

XXH = HashAlgorithm.XXH128
PAST_NS = time.time_ns() - 100_000_000_000


def _file(path: str, data: bytes, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)
    os.utime(path, ns=(PAST_NS, PAST_NS))


def _spread(root: str, top: str = "", tops: int = 6, subs: int = 3, files: int = 4) -> None:
    """``tops`` directories of ``subs`` directories of ``files`` files (and a file per top)."""
    for t in range(tops):
        for s in range(subs):
            for f in range(files):
                _file(os.path.join(root, top, f"t{t}", f"s{s}", f"f{f}.txt"), f"{t}/{s}/{f}".encode() * (f + 1))
        _file(os.path.join(root, top, f"t{t}", "top.txt"), b"x" * t, 0o755 if t % 2 else 0o644)


# -- trees (each: build(root) -> scan keyword arguments) -----------------------------------------

def many_top_directories(root):
    _spread(root, tops=12)
    _file(os.path.join(root, "root.txt"), b"at the root")
    os.makedirs(os.path.join(root, "empty"))
    return {}


def single_deep_chain(root):
    path = root
    for level in range(scan_module.MAX_DEPTH + 3):  # the bottom is too deep: a problem
        path = os.path.join(path, f"c{level % 10}")
        os.mkdir(path)
        if level % 40 == 0:
            _file(os.path.join(path, "f.txt"), str(level).encode())
    return {}


def single_top_directory(root):
    _spread(root, top="only", tops=8)  # splits one level down
    return {}


def ignores_with_reinclude(root):
    _spread(root, tops=6)
    for t in range(6):
        _file(os.path.join(root, f"t{t}", "s0", "debug.log"), b"log")
        _file(os.path.join(root, f"t{t}", "s1", "keep.log"), b"kept")
        _file(os.path.join(root, f"t{t}", "build", "out.o"), b"object")
    return {"ignorer": compile_ignores(["*.log", "!keep.log", "build/"], IgnoreSyntax.MUTAGEN, False)}


def docker_phantoms(root):
    _spread(root, tops=6)
    for t in range(6):
        _file(os.path.join(root, f"t{t}", "vendor", "lib", "a.py"), b"a")
        _file(os.path.join(root, f"t{t}", "vendor", "lib", "keep.py"), b"keep")
    ignorer = compile_ignores(["**/vendor", "!**/vendor/lib/keep.py"], IgnoreSyntax.DOCKER, False)
    return {"ignorer": ignorer}


def symlinks_portable(root):
    _spread(root, tops=6)
    for t in range(6):
        os.symlink("top.txt", os.path.join(root, f"t{t}", "inside"))
        os.symlink("/etc/hostname", os.path.join(root, f"t{t}", "absolute"))
        os.symlink("../../../outside", os.path.join(root, f"t{t}", "s0", "escaping"))
    os.symlink("t0", os.path.join(root, "to-directory"))
    return {}


def symlinks_ignored(root):
    symlinks_portable(root)
    return {"symlink_mode": SymlinkMode.IGNORE, "permissions_mode": PermissionsMode.MANUAL}


def symlinks_raw(root):
    symlinks_portable(root)
    return {"symlink_mode": SymlinkMode.POSIX_RAW}


def problems_and_odd_names(root):
    _spread(root, tops=6)
    for t in range(6):
        _file(os.path.join(root, f"t{t}", "s0", "unreadable.txt"), b"secret", 0o000)
        unreadable = os.path.join(root, f"t{t}", "s1", "closed")
        os.makedirs(unreadable)
        _file(os.path.join(unreadable, "inside.txt"), b"inside")
        os.chmod(unreadable, 0o000)
        _file(os.path.join(root, f"t{t}", "s2", TEMPORARY_PREFIX + "staging"), b"temporary")
        os.mkfifo(os.path.join(root, f"t{t}", "fifo"))
    bad = os.fsencode(root) + b"/t1/bad-\xff-name"
    with open(bad, "wb") as handle:
        handle.write(b"bad name")
    os.makedirs(os.fsencode(root) + b"/bad-dir-\xfe")
    os.makedirs(os.path.join(root, TEMPORARY_PREFIX + "dir", "x"))
    return {}


TREES = [
    many_top_directories, single_deep_chain, single_top_directory, ignores_with_reinclude, docker_phantoms,
    symlinks_portable, symlinks_ignored, symlinks_raw, problems_and_odd_names,
]
# Trees where the forced split must fork (the others have nothing to hand over).
FORKS = {single_deep_chain: 0}


# -- helpers ------------------------------------------------------------------------------------

@pytest.fixture(params=["tmp", "tmpfs"])
def base(request, tmp_path):
    """A scratch directory on the test's tmp filesystem, or on tmpfs (/dev/shm)."""
    if request.param == "tmp":
        yield str(tmp_path)
        return
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm")
    directory = tempfile.mkdtemp(dir="/dev/shm", prefix="scan-split-")
    try:
        yield directory
    finally:
        _unlock(directory)
        shutil.rmtree(directory, ignore_errors=True)


def _unlock(directory: str) -> None:
    for parent, names, _ in os.walk(directory):
        for name in names:
            try:
                os.chmod(os.path.join(parent, name), 0o755)
            except OSError:
                pass


@pytest.fixture
def forks(monkeypatch):
    """The pids forked by scans (every scan forced to split where it can)."""
    pids: list[int] = []
    monkeypatch.setattr(scan_split, "SPLIT_AFTER_NS", 0)
    monkeypatch.setattr(scan_split, "MIN_REMAINING_NS", 0)
    monkeypatch.setattr(scan_split, "MIN_FILES_SEEN", 0)
    monkeypatch.setattr(scan_split, "on_fork", pids.append)
    return pids


@pytest.fixture
def fallbacks():
    """The reasons logged when the parent walked the child's share itself."""
    with structlog.testing.capture_logs() as logs:
        yield _Reasons(logs)


class _Reasons:
    def __init__(self, logs):
        self.logs = logs

    def __call__(self) -> list[str]:
        return [entry["reason"] for entry in self.logs if "walking the child's share" in entry["event"]]


def _serial(root, **options):
    saved = scan_module._SPLIT
    scan_module._SPLIT = False
    try:
        return scan(root, hash=XXH, **options)
    finally:
        scan_module._SPLIT = saved


def _assert_same(split, serial) -> None:
    assert split.root == serial.root
    # Same positions too (the snapshot's order is the listing's).
    assert [path for path, _ in walk(split.root)] == [path for path, _ in walk(serial.root)]
    assert split.counts == serial.counts
    assert split.problems == serial.problems
    assert split.hashed == serial.hashed
    assert split.cache.directories == serial.cache.directories
    assert split._subtotals == serial._subtotals
    assert split._ignore_memo == serial._ignore_memo


def _children_of_this_process() -> list[tuple[int, str]]:
    """(pid, state) of every process whose parent is this one (zombies included)."""
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            found.append((int(name), fields[0]))
    return found


def _assert_no_child_left(pids) -> None:
    alive = {pid for pid, _ in _children_of_this_process()}
    for pid in pids:
        assert pid not in alive, f"child {pid} not reaped"
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# -- the split equals the serial scan -----------------------------------------------------------

@pytest.mark.parametrize("tree", TREES, ids=[tree.__name__ for tree in TREES])
def test_split_scan_equals_serial_scan(tree, base, forks, fallbacks):
    root = os.path.join(base, "root")
    os.makedirs(root)
    options = tree(root)
    before = _descriptors()
    serial = _serial(root, **options)
    split = scan(root, hash=XXH, **options)
    _assert_same(split, serial)
    assert len(forks) == FORKS.get(tree, 1)
    assert fallbacks() == []  # the child's answer was used
    _assert_no_child_left(forks)
    assert _descriptors() == before
    if tree is problems_and_odd_names:
        assert NON_UTF8 in {problem.error for problem in split.problems}
    if tree is single_deep_chain:
        assert TOO_DEEP in {problem.error for problem in split.problems}


def test_a_file_changed_between_scans(base, forks, fallbacks):
    """A warm full scan (cache records, no reuse tree) after an edit: same as serial, the edited
    file re-hashed by whichever process walked it."""
    root = os.path.join(base, "root")
    _spread(root, tops=8)
    first = _serial(root)
    _file(os.path.join(root, "t5", "s1", "f2.txt"), b"edited, and longer")
    os.utime(os.path.join(root, "t5", "s1", "f2.txt"), ns=(PAST_NS + 10**9, PAST_NS + 10**9))
    os.unlink(os.path.join(root, "t6", "s0", "f0.txt"))

    def cache():
        return DigestCache(XXH, {parent: dict(records) for parent, records in first.cache.directories.items()})

    serial = _serial(root, cache=cache())
    split = scan(root, hash=XXH, cache=cache())
    _assert_same(split, serial)
    assert split.hashed == 1
    assert len(forks) == 1
    assert fallbacks() == []


def test_another_filesystem_inside_the_tree(tmp_path, forks, fallbacks):
    root = str(tmp_path / "root")
    _spread(root, tops=6)
    mount_point = os.path.join(root, "t3", "s1", "mounted")
    os.makedirs(mount_point)
    top_mount = os.path.join(root, "zz-mounted")
    os.makedirs(top_mount)
    mounted = []
    try:
        for point in (mount_point, top_mount):
            done = subprocess.run(["mount", "-t", "tmpfs", "none", point], capture_output=True, timeout=30)
            if done.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
            mounted.append(point)
            _file(os.path.join(point, "other.txt"), b"on another filesystem")
        serial = _serial(root)
        split = scan(root, hash=XXH)
    finally:
        for point in mounted:
            subprocess.run(["umount", point], check=True, timeout=30)
    _assert_same(split, serial)
    assert [p.path for p in split.problems if p.error == CROSSED_FILESYSTEM] == ["t3/s1/mounted", "zz-mounted"]
    assert len(forks) == 1
    assert fallbacks() == []


# -- the child fails ----------------------------------------------------------------------------

def _crash(write_fd):
    os._exit(3)


def _garbage(write_fd):
    os.write(write_fd, scan_split._HEADER.pack(9) + b"\xc1garbage!")
    os._exit(0)


def _truncated(write_fd):
    os.write(write_fd, scan_split._HEADER.pack(1000) + b"\x90")
    os._exit(0)


def _wrong_shape(write_fd):
    body = scan_split._encode([["t1", "not an entry"]])
    os.write(write_fd, scan_split._HEADER.pack(len(body)) + body)
    os._exit(0)


def _hang(write_fd):
    while True:
        os.read(os.pipe()[0], 1)  # blocks forever; the parent's deadline kills it


@pytest.mark.parametrize("hook, reason", [
    (_crash, "no answer, child exit status 3"),
    (_garbage, "malformed answer"),
    (_truncated, "short answer"),
    (_wrong_shape, "malformed answer"),
    (_hang, "no answer, child exit status -9"),
], ids=["crash", "garbage", "truncated", "wrong-shape", "hang"])
def test_a_failing_child_gives_the_serial_result(hook, reason, tmp_path, forks, monkeypatch, fallbacks):
    root = str(tmp_path / "root")
    ignores_with_reinclude(root)
    options = {"ignorer": compile_ignores(["*.log", "!keep.log", "build/"], IgnoreSyntax.MUTAGEN, False)}
    serial = _serial(root, **options)
    monkeypatch.setattr(scan_split, "in_child", hook)
    monkeypatch.setattr(scan_split, "CHILD_GRACE_NS", 300_000_000)
    before = _descriptors()
    split = scan(root, hash=XXH, **options)
    _assert_same(split, serial)
    assert len(forks) == 1
    assert len(fallbacks()) == 1 and fallbacks()[0].startswith(reason)
    _assert_no_child_left(forks)
    assert _descriptors() == before


def test_an_exception_in_the_walk_kills_and_reaps_the_child(tmp_path, forks, monkeypatch):
    root = str(tmp_path / "root")
    _spread(root, tops=6)
    monkeypatch.setattr(scan_split, "in_child", _hang)
    monkeypatch.setattr(scan_split, "CHILD_GRACE_NS", 60_000_000_000)  # only the exception ends it
    original = scan_module._Walker.hash_opened
    calls = []

    def failing(self, dfd, name, path):
        calls.append(path)
        if len(calls) == 5:  # the parent's share, the child still walking (hanging) its own
            raise RuntimeError("boom")
        return original(self, dfd, name, path)

    monkeypatch.setattr(scan_module._Walker, "hash_opened", failing)
    before = _descriptors()
    with pytest.raises(RuntimeError):
        scan(root, hash=XXH)
    assert len(forks) == 1
    _assert_no_child_left(forks)
    assert _descriptors() == before


# -- when it forks ------------------------------------------------------------------------------

@pytest.mark.parametrize("tops, subs, files", [(10, 3, 10), (3, 10, 10), (1, 15, 20)])
def test_a_small_tree_does_not_fork(tops, subs, files, tmp_path, monkeypatch):
    """A few hundred files never fork, however slow the machine (``MIN_FILES_SEEN``)."""
    pids: list[int] = []
    monkeypatch.setattr(scan_split, "on_fork", pids.append)
    root = str(tmp_path / "root")
    _spread(root, tops=tops, subs=subs, files=files)
    for _ in range(3):
        result = scan(root, hash=XXH)
        assert result.counts.files == tops * (subs * files + 1)
    assert pids == []


def test_no_split_with_a_reuse_tree(tmp_path, forks):
    """A scan given a tree to reuse stays in one process (the child cannot hand back objects)."""
    root = str(tmp_path / "root")
    _spread(root, tops=6)
    first = scan(root, hash=XXH)
    assert len(forks) == 1
    again = scan(root, hash=XXH, cache=first.cache, reuse=first.root)
    assert again.root is first.root
    assert len(forks) == 1


def test_the_split_keeps_the_listing_order(tmp_path, forks):
    root = str(tmp_path / "root")
    _spread(root, tops=12, subs=1, files=1)
    result = scan(root, hash=XXH)
    with os.scandir(root) as listing:
        assert list(result.root.contents) == [item.name for item in listing]
    assert all(result.root.contents[name].kind in (Kind.DIRECTORY, Kind.FILE) for name in result.root.contents)
