"""The digest cache: atomic persistence, tolerant loading, reverse map."""

import os
import time

import pytest

from mutagen_actors.actors.sync.cache import RACY_MTIME, CacheRecord, DigestCache, racy
from mutagen_actors.actors.sync.settings import HashAlgorithm

DIGEST_A = b"a" * 16
DIGEST_B = b"b" * 16


def test_round_trip(tmp_path):
    file = str(tmp_path / "cache")
    cache = DigestCache(HashAlgorithm.XXH128)
    cache.put("x", 1, 2, 3, 0o100644, DIGEST_A)
    cache.put("d/y", 10, 20, 30, 0o100755, DIGEST_B)
    cache.save(file)
    loaded = DigestCache.load(file, HashAlgorithm.XXH128)
    assert loaded.get("x") == CacheRecord(1, 2, 3, 0o100644, DIGEST_A)
    assert loaded.get("d/y") == CacheRecord(10, 20, 30, 0o100755, DIGEST_B)
    assert len(loaded) == 2
    assert os.stat(file).st_mode & 0o777 == 0o600
    assert [name for name in os.listdir(tmp_path) if name != "cache"] == []  # no temporary left


@pytest.mark.parametrize(
    "content",
    [None, b"", b"\xff\x00garbage", b"\x93\x01\xa6xxh128\x01"],
    ids=["missing", "empty", "garbage", "wrong-shape"],
)
def test_load_tolerates_missing_or_corrupt(tmp_path, content):
    file = tmp_path / "cache"
    if content is not None:
        file.write_bytes(content)
    cache = DigestCache.load(str(file), HashAlgorithm.XXH128)
    assert len(cache) == 0


def test_load_discards_other_algorithm(tmp_path):
    file = str(tmp_path / "cache")
    cache = DigestCache(HashAlgorithm.SHA1)
    cache.put("x", 1, 2, 3, 4, b"s" * 20)
    cache.save(file)
    assert len(DigestCache.load(file, HashAlgorithm.SHA1)) == 1
    assert len(DigestCache.load(file, HashAlgorithm.XXH128)) == 0


def test_save_replaces_atomically(tmp_path):
    file = str(tmp_path / "cache")
    first = DigestCache()
    first.put("old", 1, 1, 1, 1, DIGEST_A)
    first.save(file)
    second = DigestCache()
    second.put("new", 2, 2, 2, 2, DIGEST_B)
    second.save(file)
    loaded = DigestCache.load(file)
    assert "new" in loaded and "old" not in loaded


def test_reverse_map_follows_changes():
    cache = DigestCache()
    cache.put("a", 1, 1, 1, 1, DIGEST_A)
    cache.put("b/c", 1, 1, 2, 1, DIGEST_A)
    cache.put("d", 1, 1, 3, 1, DIGEST_B)
    assert sorted(cache.paths_for(DIGEST_A)) == ["a", "b/c"]
    cache.discard("a")
    assert cache.paths_for(DIGEST_A) == ["b/c"]
    cache.discard_below("b")
    assert cache.paths_for(DIGEST_A) == []
    assert cache.paths_for(DIGEST_B) == ["d"]


def test_matching_digest(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    past = time.time_ns() - 10_000_000_000
    os.utime(path, ns=(past, past))
    st = os.lstat(path)
    cache = DigestCache()
    assert cache.matching_digest("f", st) is None
    cache.put_stat("f", st, DIGEST_A)
    assert cache.matching_digest("f", st) == DIGEST_A
    os.chmod(path, 0o700)
    assert cache.matching_digest("f", os.lstat(path)) is None


def test_a_just_modified_file_gets_a_racy_record(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    st = os.lstat(path)
    cache = DigestCache()
    cache.put_stat("f", st, DIGEST_A)
    assert cache.get("f").mtime_ns == RACY_MTIME
    assert cache.matching_digest("f", st) is None  # never trusted on metadata alone


SECOND = 1_000_000_000
NOW = 1_790_000_000 * SECOND + SECOND // 2  # half past a second


@pytest.mark.parametrize("mtime_ns, expected", [
    # a sub-second stamp: only the last FINE_RACY_WINDOW_NS (100 ms) before the record are racy
    (NOW - 100_000_000 - 1, False),
    (NOW - 100_000_000, True),
    (NOW - SECOND, False),
    (NOW, True),
    (NOW + 5 * SECOND, True),  # dated in the future
    # a whole-second stamp may come from a filesystem that keeps seconds: 2 s (RACY_WINDOW_NS)
    (NOW - SECOND // 2 - 2 * SECOND, False),
    (NOW - SECOND // 2 - SECOND, True),
    (NOW - SECOND // 2, True),
    (NOW - SECOND // 2 + SECOND, True),
    # older than the long window whatever the stamp
    (NOW - 2 * SECOND - 1, False),
    (NOW - 3 * SECOND - SECOND // 2, False),
])
def test_racy_window_depends_on_the_stamp(mtime_ns, expected):
    assert racy(mtime_ns, NOW) is expected


def test_discard_below_root_clears_everything():
    cache = DigestCache()
    cache.put("a", 1, 1, 1, 1, DIGEST_A)
    cache.discard_below("")
    assert len(cache) == 0


# Packed records (format 2): one bytes object per file; unpacking gives back what was put.
@pytest.mark.parametrize(
    "record",
    [
        (0, 0, 0, 0, b""),
        (1, 2, 3, 0o100644, DIGEST_A),
        (10 << 40, -1, (1 << 64) - 1, 0o100755, b"s" * 20),  # racy mtime, largest inode
        (5, -1_000_000_000, 7, 0o120777, b"\x00" * 32),  # a time before 1970, a 32-byte digest
    ],
    ids=["zeros", "plain", "extremes", "negative-time"],
)
def test_packed_record_round_trip(tmp_path, record):
    cache = DigestCache()
    cache.put("d/f", *record)
    assert cache.record("d/f") == CacheRecord(*record)
    assert cache.paths_for(record[4]) == ["d/f"]
    file = str(tmp_path / "cache")
    cache.save(file)
    assert DigestCache.load(file).get("d/f") == CacheRecord(*record)


def test_version_1_file_is_converted(tmp_path):
    import msgspec

    file = tmp_path / "cache"
    file.write_bytes(msgspec.msgpack.encode(
        [1, "xxh128", {"": {"x": (1, 2, 3, 0o100644, DIGEST_A)}, "d": {"y": (10, 20, 30, 0o100755, DIGEST_B)}}]))
    loaded = DigestCache.load(str(file))
    assert loaded.get("x") == CacheRecord(1, 2, 3, 0o100644, DIGEST_A)
    assert loaded.get("d/y") == CacheRecord(10, 20, 30, 0o100755, DIGEST_B)


@pytest.mark.parametrize(
    "directories",
    [{"": {"x": (1, 2, 3, 1 << 40, DIGEST_A)}}, {"": {"x": (1, 2, -3, 4, DIGEST_A)}}],
    ids=["mode-too-big", "negative-inode"],
)
def test_version_1_file_with_unpackable_numbers_starts_empty(tmp_path, directories):
    import msgspec

    file = tmp_path / "cache"
    file.write_bytes(msgspec.msgpack.encode([1, "xxh128", directories]))
    assert len(DigestCache.load(str(file))) == 0
