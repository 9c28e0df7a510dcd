"""Incremental scans (dirty paths from a watcher) give exactly what a full scan gives."""

import os
import random
import shutil
import time

import pytest

from mutagen_actors.actors.sync.cache import RACY_MTIME, DigestCache
from mutagen_actors.actors.sync.ignore import compile_ignores
from mutagen_actors.actors.sync.scan import scan
from mutagen_actors.actors.sync.settings import TEMPORARY_PREFIX, IgnoreSyntax


def full(root, ignorer=None):
    return scan(root, cache=DigestCache(), ignorer=ignorer)


def assert_same(incremental, reference):
    assert incremental.root == reference.root
    assert incremental.counts == reference.counts
    assert incremental.problems == reference.problems


def write(path, data: bytes):
    with open(path, "wb") as handle:
        handle.write(data)


def test_only_dirty_files_are_read(tmp_path):
    root = str(tmp_path)
    for name in "abc":
        os.mkdir(os.path.join(root, name))
        for number in range(5):
            write(os.path.join(root, name, f"f{number}"), f"{name}{number}".encode())
    cache = DigestCache()
    previous = scan(root, cache=cache)
    write(os.path.join(root, "b", "f1"), b"changed")
    os.unlink(os.path.join(root, "c", "f2"))
    write(os.path.join(root, "a", "new"), b"new")
    result = scan(root, cache=cache, previous=previous, dirty=["b/f1", "c/f2", "a/new"])
    assert result.hashed == 2
    assert_same(result, full(root))
    assert "c/f2" not in cache and "a/new" in cache


def test_nothing_dirty_reuses_everything(tmp_path):
    write(str(tmp_path / "f"), b"x")
    cache = DigestCache()
    previous = scan(str(tmp_path), cache=cache)
    result = scan(str(tmp_path), cache=cache, previous=previous, dirty=[])
    assert result.root is previous.root and result.hashed == 0


@pytest.mark.parametrize("dirty", [[""], ["../x"], ["/abs"]])
def test_root_or_untrusted_dirty_path_means_full_scan(tmp_path, dirty):
    write(str(tmp_path / "f"), b"x")
    cache = DigestCache()
    previous = scan(str(tmp_path), cache=cache)
    write(str(tmp_path / "unreported"), b"y")
    result = scan(str(tmp_path), cache=cache, previous=previous, dirty=dirty)
    assert "unreported" in result.root.contents


def test_dirty_directory_is_rescanned_as_a_subtree(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "d", "e"))
    cache = DigestCache()
    previous = scan(root, cache=cache)
    shutil.rmtree(os.path.join(root, "d"))
    os.makedirs(os.path.join(root, "d", "x", "y"))
    write(os.path.join(root, "d", "x", "y", "z"), b"z")
    result = scan(root, cache=cache, previous=previous, dirty=["d"])
    assert_same(result, full(root))


def test_type_changes_and_missing_ancestors(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "a", "b"))
    write(os.path.join(root, "a", "b", "f"), b"f")
    write(os.path.join(root, "g"), b"g")
    cache = DigestCache()
    previous = scan(root, cache=cache)
    # A deep dirty path whose ancestor became a file; a file that became a directory.
    shutil.rmtree(os.path.join(root, "a"))
    write(os.path.join(root, "a"), b"now a file")
    os.unlink(os.path.join(root, "g"))
    os.mkdir(os.path.join(root, "g"))
    result = scan(root, cache=cache, previous=previous, dirty=["a/b/f", "g"])
    assert_same(result, full(root))
    assert "a/b/f" not in cache


def test_temporary_and_non_utf8_dirty_names(tmp_path):
    root = str(tmp_path)
    cache = DigestCache()
    previous = scan(root, cache=cache)
    write(os.path.join(root, f"{TEMPORARY_PREFIX}x"), b"t")
    bad = os.fsdecode(b"bad\xff")
    write(os.path.join(os.fsencode(root), b"bad\xff"), b"b")
    result = scan(root, cache=cache, previous=previous, dirty=[f"{TEMPORARY_PREFIX}x", bad])
    assert_same(result, full(root))
    os.unlink(os.path.join(os.fsencode(root), b"bad\xff"))
    again = scan(root, cache=cache, previous=result, dirty=[bad])
    assert_same(again, full(root))


def test_dirty_path_inside_ignored_directory(tmp_path):
    root = str(tmp_path)
    os.mkdir(os.path.join(root, "node_modules"))
    ignorer = compile_ignores(["node_modules"], IgnoreSyntax.MUTAGEN, False)
    cache = DigestCache()
    previous = scan(root, cache=cache, ignorer=ignorer)
    write(os.path.join(root, "node_modules", "x"), b"x")
    result = scan(root, cache=cache, ignorer=ignorer, previous=previous, dirty=["node_modules/x"])
    assert_same(result, full(root, ignorer))
    assert result.hashed == 0


# -- random edits -------------------------------------------------------------------------------

def _random_edit(rng: random.Random, root: str) -> list[str]:
    """One random edit; returns the dirty paths a watcher would report."""
    entries = []
    for directory, dirnames, filenames in os.walk(root):
        relative = os.path.relpath(directory, root)
        relative = "" if relative == "." else relative
        for name in dirnames + filenames:
            entries.append(os.path.join(relative, name) if relative else name)
    directories = [""] + [e for e in entries if os.path.isdir(os.path.join(root, e)) and not os.path.islink(os.path.join(root, e))]
    files = [e for e in entries if os.path.isfile(os.path.join(root, e)) and not os.path.islink(os.path.join(root, e))]
    parent = rng.choice(directories)
    new_name = f"n{rng.randrange(1000)}"
    new_path = os.path.join(parent, new_name) if parent else new_name
    operation = rng.choice(["create", "create", "modify", "modify", "chmod", "delete", "mkdir", "rmdir", "link", "replace", "rename"])
    full_new = os.path.join(root, new_path)
    if operation == "create" and not os.path.lexists(full_new):
        write(full_new, os.urandom(rng.randrange(1, 64)))
        return [new_path]
    if operation == "modify" and files:
        path = rng.choice(files)
        with open(os.path.join(root, path), "ab") as handle:
            handle.write(b"+")
        return [path]
    if operation == "chmod" and files:
        path = rng.choice(files)
        os.chmod(os.path.join(root, path), rng.choice([0o644, 0o755]))
        return [path]
    if operation == "delete" and files:
        path = rng.choice(files)
        os.unlink(os.path.join(root, path))
        return [path]
    if operation == "mkdir" and not os.path.lexists(full_new):
        os.makedirs(os.path.join(full_new, "inner"))
        write(os.path.join(full_new, "inner", "f"), b"deep")
        return [new_path]
    if operation == "rmdir" and len(directories) > 1:
        path = rng.choice(directories[1:])
        shutil.rmtree(os.path.join(root, path))
        return [path]
    if operation == "link" and not os.path.lexists(full_new):
        os.symlink(rng.choice(["x", "../x", "/abs"]), full_new)
        return [new_path]
    if operation == "replace" and files:
        path = rng.choice(files)
        os.unlink(os.path.join(root, path))
        os.mkdir(os.path.join(root, path))
        return [path]
    if operation == "rename" and files and not os.path.lexists(full_new):
        path = rng.choice(files)
        os.rename(os.path.join(root, path), full_new)
        return [path, new_path]
    return []


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("patterns", [None, ["n1*", "inner/"]], ids=["no-ignores", "ignores"])
def test_incremental_equals_full_on_random_edits(tmp_path, seed, patterns):
    rng = random.Random(seed)
    ignorer = None if patterns is None else compile_ignores(patterns, IgnoreSyntax.MUTAGEN, False)
    root = str(tmp_path / "root")
    os.mkdir(root)
    for _ in range(20):
        _random_edit(rng, root)
    cache = DigestCache()
    previous = scan(root, cache=cache, ignorer=ignorer)
    for round_number in range(25):
        dirty = []
        for _ in range(rng.randrange(1, 5)):
            dirty.extend(_random_edit(rng, root))
        # Every fifth round is a full rescan that carries the previous result (and ignore cache).
        result = scan(
            root, cache=cache, ignorer=ignorer, previous=previous, dirty=None if round_number % 5 == 4 else dirty
        )
        reference = full(root, ignorer)
        assert_same(result, reference)
        assert set(cache.paths()) == set(reference.cache.paths())
        assert all(cache.directories.values())  # no empty per-directory maps linger
        previous = result


def test_another_ignorer_is_not_answered_from_the_ignore_cache(tmp_path):
    write(str(tmp_path / "a.log"), b"x")
    first = compile_ignores(["*.log"], IgnoreSyntax.MUTAGEN, False)
    cache = DigestCache()
    previous = scan(str(tmp_path), cache=cache, ignorer=first)
    assert previous.root.contents["a.log"].kind.name == "UNTRACKED"
    second = compile_ignores([], IgnoreSyntax.MUTAGEN, False)
    result = scan(str(tmp_path), cache=cache, ignorer=second, previous=previous)
    assert result.root.contents["a.log"].kind.name == "FILE"


SETTLED_NS = 10_000_000_000  # older than any racy window


def _settled(path: str) -> os.stat_result:
    past = time.time_ns() - SETTLED_NS
    os.utime(path, ns=(past, past))
    return os.lstat(path)


@pytest.mark.parametrize("case, hashed", [
    ("recorded", 0),  # what a transition wrote and recorded since the last scan: not read again
    ("racy", 2),  # recorded too soon after it was written: read again
    ("changed after the record", 1),  # its lstat no longer matches the record: read again
    ("no record", 2),
])
def test_records_written_since_the_last_scan_are_reused(tmp_path, case, hashed):
    """Paths new to the previous snapshot (a transition created them and recorded them in the
    cache since) reuse the cache's records exactly as a full scan would: only while the file's
    lstat matches them, never a racy one."""
    root = str(tmp_path / "root")
    os.makedirs(os.path.join(root, "old"))
    write(os.path.join(root, "old", "f"), b"old")
    cache = DigestCache()
    previous = scan(root, cache=cache)
    written = {"new/sub/a": b"alpha", "old/b": b"beta"}  # a new subtree, a new file in an old one
    os.makedirs(os.path.join(root, "new", "sub"))
    for path, data in written.items():
        absolute = os.path.join(root, path)
        write(absolute, data)
        digest = scan(absolute, cache=DigestCache()).root.digest
        if case == "racy":
            future = time.time_ns() + 60 * 1_000_000_000
            os.utime(absolute, ns=(future, future))  # modified "after" the record: racy
            cache.put_stat(path, os.lstat(absolute), digest)
            assert cache.record(path).mtime_ns == RACY_MTIME
        elif case != "no record":
            cache.put_stat(path, _settled(absolute), digest)
    if case == "changed after the record":
        write(os.path.join(root, "old", "b"), b"beta, edited")
        _settled(os.path.join(root, "old", "b"))
    result = scan(root, cache=cache, previous=previous, dirty=["new", "old/b"])
    assert result.hashed == hashed
    assert_same(result, full(root))
    for path in written:
        record = cache.record(path)
        assert record is not None and record.digest == scan(
            os.path.join(root, path), cache=DigestCache()).root.digest
