"""Where an endpoint stages: on the root's filesystem when the data directory is elsewhere, so a
staged file moves into place with one rename (``same_filesystem_stage_mode``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile

import pytest

from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry, Kind
from mutagen_actors.actors.sync.settings import TEMPORARY_PREFIX, HashAlgorithm, StageMode, WatchMode
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint, same_filesystem_stage_mode
from mutagen_actors.wire.messages.endpoint import StageItem, SupplyRequest

D, N, I = StageMode.DATA_DIRECTORY, StageMode.NEIGHBORING, StageMode.INTERNAL


@pytest.mark.parametrize("mode, root_device, data_device, expected", [
    (D, 1, 1, D),        # same filesystem: the configured default
    (D, 1, 2, I),        # elsewhere: inside the root (one rename per file)
    (D, None, 2, D),     # the root does not exist yet: nothing to stage inside
    (D, 1, None, D),     # unknown data device: keep the default
    (N, 1, 2, N),        # an explicit choice is kept
    (I, 1, 1, I),
])
def test_stage_mode_follows_the_roots_filesystem(mode, root_device, data_device, expected):
    assert same_filesystem_stage_mode(mode, root_device, data_device) is expected


def _other_filesystem(tmp_path) -> str:
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's temporary directory")
    return tempfile.mkdtemp(prefix="ma-staging-place-", dir="/dev/shm")


def test_staging_on_another_filesystem_moves_into_the_root_and_leaves_nothing(tmp_path):
    root = _other_filesystem(tmp_path)
    try:
        source = tmp_path / "source"
        source.mkdir()
        (source / "a.txt").write_bytes(b"hello")
        settings = dict(session="sync_place", data_directory=str(tmp_path / "data"),
                        watch_mode=WatchMode.NO_WATCH)
        sender = LocalEndpoint(EndpointSettings(root=str(source), side="alpha", **settings))
        receiver = LocalEndpoint(EndpointSettings(root=root, side="beta", **settings))
        assert receiver.stage_mode is StageMode.INTERNAL
        assert receiver.staging.directory.startswith(os.path.join(root, TEMPORARY_PREFIX))
        digest = digest_bytes(b"hello", HashAlgorithm.XXH128)

        async def run():
            await sender.start()
            await receiver.start()
            try:
                sender.scan(True, None)
                receiver.scan(True, None)
                needs = receiver.needs([StageItem("a.txt", digest)])
                chunks = sender.supply([SupplyRequest(i.path, i.digest, 0) for i in needs], 1 << 20)
                assert receiver.receive(chunks) == (1, [])
                # The scan never sees the staging store inside the root.
                assert receiver.scan(True, None).root.contents == {}
                result = receiver.transition([Change("a.txt", None, Entry(Kind.FILE, digest=digest))])
                assert result.problems == [] and not result.missing_staged
            finally:
                await sender.stop()
                await receiver.stop()

        asyncio.run(run())
        assert sorted(os.listdir(root)) == ["a.txt"]  # staging emptied and removed
        with open(os.path.join(root, "a.txt"), "rb") as handle:
            assert handle.read() == b"hello"
    finally:
        shutil.rmtree(root, ignore_errors=True)
