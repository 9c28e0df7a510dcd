"""The receiver's inline path for whole files (``Receiver.receive``): the same outcomes as the
general path for every input that leaves it (a missing bucket, a malformed digest, a file that
failed earlier in the same message, one digest twice, a file being received in pieces)."""

from __future__ import annotations

import os

import pytest

from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Problem
from mutagen_actors.actors.sync.settings import HashAlgorithm, WatchMode
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.wire.messages.endpoint import Chunk, StageItem


def digest(data: bytes) -> bytes:
    return digest_bytes(data, HashAlgorithm.XXH128)


def whole(path: str, data: bytes, claimed: bytes = b"") -> Chunk:
    return Chunk(path, claimed or digest(data), 0, len(data), data, True)


@pytest.fixture
def endpoint(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    return LocalEndpoint(EndpointSettings(
        root=str(root), session="fast", side="beta", data_directory=str(tmp_path / "data"),
        watch_mode=WatchMode.NO_WATCH))


def staged(endpoint) -> dict[bytes, bytes]:
    found = {}
    for d in endpoint.staging.digests():
        with open(endpoint.staging.path_for(d), "rb") as handle:
            found[d] = handle.read()
    return found


def test_many_whole_files_land_in_their_buckets_with_verified_sizes(endpoint):
    contents = [f"file {i}".encode() * (i + 1) for i in range(300)]  # most of the 256 buckets
    completed, problems, refetch = endpoint.receive_chunks(
        [whole(f"d/{i}", data) for i, data in enumerate(contents)])
    assert (completed, problems, refetch) == (300, [], [])
    assert staged(endpoint) == {digest(data): data for data in contents}
    assert all(endpoint.staging.verified_size(digest(data)) == len(data) for data in contents)
    mode = os.stat(endpoint.staging.path_for(digest(contents[0]))).st_mode & 0o777
    assert mode == endpoint.staging.file_mode & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("chunks, completed, problems, refetched", [
    # one digest twice in a message: staged once, both counted
    ([whole("a", b"same"), whole("b", b"same")], 2, [], []),
    # a malformed digest: the general path's message, nothing written
    ([Chunk("short", b"\x01\x02", 0, 1, b"x", True)], 0,
     [Problem("short", "invalid xxh128 digest b'\\x01\\x02'")], []),
    # the first piece of a file failed (out of order): its whole chunk later in the message is
    # skipped, the next file is not
    ([Chunk("p", digest(b"piece"), 3, 5, b"ce", True), whole("p", b"piece"), whole("q", b"q")],
     1, [Problem("p", "content of 'p' arrived out of order (it resumes at byte 3 but 0 bytes "
                      "are staged)")], [StageItem("p", digest(b"piece"))]),
    # corrupted: nothing written, fetched again
    ([whole("c", b"hellO", digest(b"hello")), whole("d", b"fine")], 1,
     [Problem("c", "received content does not match its digest (corrupted in transit, or "
                   "changed while sent)")], [StageItem("c", digest(b"hello"))]),
])
def test_what_leaves_the_inline_path_keeps_the_general_rules(endpoint, chunks, completed,
                                                            problems, refetched):
    assert endpoint.receive_chunks(chunks) == (completed, problems, refetched)
    good = {c.digest: c.data for c in chunks
            if c.offset == 0 and len(c.digest) == 16 and digest(c.data) == c.digest
            and c.path not in {p.path for p in problems}}
    assert staged(endpoint) == good


def test_a_whole_chunk_after_pieces_of_the_same_digest_restarts_that_file(endpoint):
    data = b"0123456789"
    first = Chunk("f", digest(data), 0, len(data), data[:4], False)
    assert endpoint.receive_chunks([first]) == (0, [], [])
    # the sender starts over with the whole file (a refetch): it replaces the partial content
    assert endpoint.receive_chunks([whole("f", data)]) == (1, [], [])
    assert staged(endpoint) == {digest(data): data}
    assert not os.path.exists(endpoint.staging.resume_path(digest(data)))


def test_a_store_that_cannot_be_opened_is_a_problem_per_file_not_a_failed_message(endpoint):
    directory = endpoint.staging.directory
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    with open(directory, "wb"):
        pass  # a regular file where the store directory should be
    completed, problems, refetch = endpoint.receive_chunks([whole("a", b"a"), whole("b", b"b")])
    assert (completed, refetch) == (0, [])
    assert problems == [Problem("a", "Not a directory"), Problem("b", "Not a directory")]
