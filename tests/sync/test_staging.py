"""The staging store: only verified content ever appears under a digest's name."""

import os

import pytest

from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.settings import TEMPORARY_PREFIX, HashAlgorithm, StageMode
from mutagen_actors.actors.sync.staging import Staging, StagingError, staging_directory


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_receive_verifies_and_publishes(tmp_path, algorithm):
    store = Staging(str(tmp_path / "store"), algorithm)
    data = b"hello world" * 1000
    digest = digest_bytes(data, algorithm)
    assert not store.has(digest)
    path = store.receive(digest, [data[:5], data[5:]])
    assert path == store.path_for(digest)
    with open(path, "rb") as handle:
        assert handle.read() == data
    hexdigest = digest.hex()
    assert path.endswith(os.path.join(hexdigest[:2], hexdigest))
    assert store.has(digest)
    assert list(store.digests()) == [digest]


def test_mismatch_leaves_nothing(tmp_path):
    store = Staging(str(tmp_path / "store"))
    digest = digest_bytes(b"expected", HashAlgorithm.XXH128)
    with pytest.raises(StagingError, match="does not match"):
        store.receive(digest, [b"something else"])
    assert not store.has(digest)
    bucket = os.path.dirname(store.path_for(digest))
    assert os.listdir(bucket) == []


def test_size_limit(tmp_path):
    store = Staging(str(tmp_path / "store"), max_file_size=10)
    data = b"x" * 11
    with pytest.raises(StagingError, match="maximum staging file size"):
        store.receive(digest_bytes(data, HashAlgorithm.XXH128), [data])
    assert list(store.digests()) == []


def test_bad_digest_length(tmp_path):
    store = Staging(str(tmp_path / "store"), HashAlgorithm.SHA1)
    with pytest.raises(StagingError, match="invalid sha1 digest"):
        store.path_for(b"short")


def test_receive_file_discard_and_wipe(tmp_path):
    source = tmp_path / "source"
    source.write_bytes(b"content")
    store = Staging(str(tmp_path / "store"))
    digest = digest_bytes(b"content", HashAlgorithm.XXH128)
    store.receive_file(digest, str(source))
    assert store.has(digest)
    store.discard(digest)
    assert not store.has(digest)
    store.discard(digest)  # absent: no error
    store.receive(digest, [b"content"])
    store.wipe()
    assert not os.path.exists(store.directory)
    assert list(store.digests()) == []


@pytest.mark.parametrize(
    "mode, expected",
    [
        (StageMode.DATA_DIRECTORY, "/data/staging/s1-beta"),
        (StageMode.NEIGHBORING, f"/work/{TEMPORARY_PREFIX}staging-s1-beta"),
        (StageMode.INTERNAL, f"/work/root/{TEMPORARY_PREFIX}staging-s1-beta"),
    ],
)
def test_staging_directory(mode, expected):
    assert staging_directory(mode, root="/work/root", session="s1", side="beta", data_directory="/data") == expected


def test_piecewise_receive_commit_and_abort(tmp_path):
    store = Staging(str(tmp_path / "store"))
    data = b"piece one, piece two"
    digest = digest_bytes(data, HashAlgorithm.XXH128)
    writer = store.begin(digest)
    writer.write(data[:9])
    assert not store.has(digest)  # nothing visible before commit
    writer.write(data[9:])
    assert writer.commit() == store.path_for(digest)
    assert store.has(digest)
    writer.abort()  # after commit: harmless
    assert store.has(digest)

    other = digest_bytes(b"other", HashAlgorithm.XXH128)
    aborted = store.begin(other)
    aborted.write(b"oth")
    aborted.abort()
    with pytest.raises(StagingError, match="already committed or aborted"):
        aborted.write(b"er")
    bucket = os.path.dirname(store.path_for(other))
    assert not store.has(other) and os.listdir(bucket) == []
