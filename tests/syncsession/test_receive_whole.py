"""A file that arrives whole in one chunk takes the receiver's short path (``agent.transfer``):
verified in memory before anything is written, published under its final staging name only
when it matched, the store's bucket directories created on demand; pieces of bigger files still
go through the resumable path, and both can share one message."""

from __future__ import annotations

import os

import pytest

from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Problem
from mutagen_actors.actors.sync.settings import HashAlgorithm, WatchMode
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.wire.messages.endpoint import Chunk, StageItem

H = HashAlgorithm.XXH128


def digest(data: bytes) -> bytes:
    return digest_bytes(data, H)


@pytest.fixture
def endpoint(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    return LocalEndpoint(EndpointSettings(
        root=str(root), session="whole", side="beta", data_directory=str(tmp_path / "data"),
        watch_mode=WatchMode.NO_WATCH, max_staging_file_size=64))


def files_in(directory: str) -> list[str]:
    found = []
    for parent, _dirs, names in os.walk(directory):
        found += [os.path.relpath(os.path.join(parent, name), directory) for name in names]
    return sorted(found)


def whole(path: str, data: bytes, claimed: bytes = b"") -> Chunk:
    return Chunk(path, claimed or digest(data), 0, len(data), data, True)


@pytest.mark.parametrize("chunk, staged, problem, refetched", [
    (whole("a", b"hello"), True, "", False),
    (whole("empty", b""), True, "", False),
    # corrupted in transit: nothing written, fetched again whole
    (whole("b", b"hellO", digest(b"hello")), False,
     "received content does not match its digest (corrupted in transit, or changed while sent)",
     True),
    # beyond the staging file size limit (64 bytes here): refused, not refetched
    (whole("big", b"x" * 65), False,
     "staged file exceeds the maximum staging file size (64 bytes)", False),
    # the sender could not read it
    (Chunk("gone", digest(b"?"), 0, 0, b"", True, "unable to read file: No such file"), False,
     "unable to read file: No such file", False),
])
def test_a_whole_file_is_staged_only_when_it_verifies(endpoint, chunk, staged, problem, refetched):
    completed, problems, refetch = endpoint.receive_chunks([chunk])
    assert completed == (1 if staged else 0)
    assert problems == ([Problem(chunk.path, problem)] if problem else [])
    assert refetch == ([StageItem(chunk.path, chunk.digest)] if refetched else [])
    assert endpoint.staging.has(chunk.digest) == staged
    expected = [os.path.relpath(endpoint.staging.path_for(chunk.digest),
                                endpoint.staging.directory)] if staged else []
    assert files_in(endpoint.staging.directory) == expected  # no partial or resume file left
    if staged:
        with open(endpoint.staging.path_for(chunk.digest), "rb") as handle:
            assert handle.read() == chunk.data


def test_whole_files_and_pieces_share_a_message_and_a_failure_does_not_stop_the_rest(endpoint):
    big = bytes(range(50))
    chunks = [
        whole("one", b"one"),
        Chunk("big", digest(big), 0, len(big), big[:20], False),  # resumable path
        whole("bad", b"bad", digest(b"other")),
        Chunk("big", digest(big), 20, len(big), big[20:], True),
        whole("two", b"two"),
    ]
    completed, problems, refetch = endpoint.receive_chunks(chunks)
    assert completed == 3
    assert [p.path for p in problems] == ["bad"]
    assert refetch == [StageItem("bad", digest(b"other"))]
    assert sorted(endpoint.staging.digests()) == sorted(digest(d) for d in (b"one", big, b"two"))


def test_the_store_is_recreated_when_it_was_wiped(endpoint):
    assert endpoint.receive_chunks([whole("a", b"first")])[0] == 1
    endpoint.staging.wipe()
    assert endpoint.receive_chunks([whole("b", b"second")])[0] == 1
    assert list(endpoint.staging.digests()) == [digest(b"second")]


def test_a_resume_file_of_the_same_digest_is_replaced_by_the_whole_file(endpoint):
    data = b"complete content"
    resume = endpoint.staging.resume_path(digest(data))
    os.makedirs(os.path.dirname(resume))
    with open(resume, "wb") as handle:
        handle.write(b"stale prefix that is longer than the file")
    assert endpoint.receive_chunks([whole("f", data)])[0] == 1
    with open(endpoint.staging.path_for(digest(data)), "rb") as handle:
        assert handle.read() == data
    # The whole file is written under its final name; the stale partial content is never used
    # and goes with the next StageBegin (content staged is no longer a candidate to resume).
    assert endpoint.needs([StageItem("f", digest(data))]) == []
    assert not os.path.exists(resume)
