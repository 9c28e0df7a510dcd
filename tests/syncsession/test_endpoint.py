"""The endpoint (agent side) against the real filesystem: content reuse, chunked transfer with
verification, confinement to the root, snapshot generations."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry
from mutagen_actors.actors.sync.settings import HashAlgorithm, WatchMode
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.wire.messages.endpoint import Chunk, StageItem, SupplyRequest

from .conftest import write


def digest(data: bytes) -> bytes:
    return digest_bytes(data, HashAlgorithm.XXH128)


def endpoint(root: str, data: str, side: str) -> LocalEndpoint:
    return LocalEndpoint(EndpointSettings(root=root, session="sync_test", side=side,
                                          data_directory=data, watch_mode=WatchMode.NO_WATCH))


@pytest.fixture
def pair(tmp_path):
    alpha_root, beta_root = str(tmp_path / "alpha"), str(tmp_path / "beta")
    os.mkdir(alpha_root)
    os.mkdir(beta_root)
    alpha = endpoint(alpha_root, str(tmp_path / "data"), "alpha")
    beta = endpoint(beta_root, str(tmp_path / "data"), "beta")
    asyncio.run(alpha.start())
    asyncio.run(beta.start())
    return alpha, beta


def transfer(sender: LocalEndpoint, receiver: LocalEndpoint, items, budget: int) -> int:
    """Move ``items`` the way the stager does; returns the number of Supply requests."""
    queue = [SupplyRequest(i.path, i.digest, 0) for i in receiver.needs(items)]
    requests = 0
    while queue:
        chunks = sender.supply(queue, budget)
        requests += 1
        done = {(c.path, c.offset) for c in chunks}
        queue = [r for r in queue if (r.path, r.offset) not in done]
        last = chunks[-1]
        if not last.eof:
            queue.insert(0, SupplyRequest(last.path, last.digest, last.offset + len(last.data)))
        completed, problems = receiver.receive(chunks)
        assert not problems
    return requests


def test_content_moves_in_bounded_chunks_and_is_applied(pair):
    alpha, beta = pair
    big = os.urandom(300_000)
    write(alpha.root, "big.bin", big)
    write(alpha.root, "small.txt", "small")
    snapshot = asyncio.run(alpha.scan_async(full=True)).root
    items = [StageItem("big.bin", digest(big)), StageItem("small.txt", digest(b"small"))]
    assert transfer(alpha, beta, items, budget=64 * 1024) >= 5  # big file in pieces
    assert beta.needs(items) == []  # everything staged, verified
    asyncio.run(beta.scan_async(full=True))
    result = asyncio.run(beta.transition_async([Change("big.bin", None, snapshot.contents["big.bin"]),
                                                Change("small.txt", None,
                                                       snapshot.contents["small.txt"])]))
    assert not result.problems
    with open(os.path.join(beta.root, "big.bin"), "rb") as stream:
        assert stream.read() == big


def test_content_already_in_the_root_is_reused_not_transferred(pair):
    alpha, beta = pair
    contents = [f"renamed content {i}".encode() for i in range(10)]
    for i, content in enumerate(contents):
        write(beta.root, f"old/{i}.txt", content)
    write(beta.root, "other.txt", "not here")
    asyncio.run(beta.scan_async(full=True))
    items = [StageItem(f"new/{i}.txt", digest(c)) for i, c in enumerate(contents)]
    missing = StageItem("new/missing.txt", digest(b"nowhere"))
    assert beta.needs(items + [missing]) == [missing]
    assert all(beta.staging.has(item.digest) for item in items)


def test_tampered_or_out_of_order_content_is_never_published(pair):
    _, beta = pair
    good = b"x" * 100
    wanted = digest(good)
    completed, problems = beta.receive([Chunk("f", wanted, 0, 100, b"y" * 100, True)])
    assert completed == 0 and "does not match" in problems[0].error
    completed, problems = beta.receive([Chunk("f", wanted, 50, 100, good[50:], True)])
    assert completed == 0 and "out of order" in problems[0].error
    completed, problems = beta.receive([Chunk("f", wanted, 0, 0, b"", True, "unable to read")])
    assert completed == 0 and problems
    assert not beta.staging.has(wanted)
    assert list(beta.staging.digests()) == []
    leftovers = [n for _, _, files in os.walk(beta.staging.directory) for n in files]
    assert leftovers == []


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "link/secret.txt", ""])
def test_supply_reads_only_inside_the_root(pair, tmp_path, path):
    alpha, _ = pair
    write(str(tmp_path), "outside.txt", "secret")
    write(str(tmp_path), "elsewhere/secret.txt", "secret")
    os.symlink(str(tmp_path / "elsewhere"), os.path.join(alpha.root, "link"))
    [chunk] = alpha.supply([SupplyRequest(path, b"0" * 16, 0)], 1024)
    assert chunk.error and chunk.data == b"" and chunk.eof


def test_generation_moves_only_when_the_snapshot_changes(pair):
    alpha, _ = pair
    write(alpha.root, "a.txt", "a")
    asyncio.run(alpha.scan_async(full=True))
    first = alpha.generation
    asyncio.run(alpha.scan_async(full=True))
    assert alpha.generation == first
    write(alpha.root, "b.txt", "b")
    asyncio.run(alpha.scan_async(full=True))
    assert alpha.generation == first + 1
    assert alpha.previous.root.contents["b.txt"] == Entry.file(digest(b"b"))


def test_a_transition_holds_the_watcher_then_watches_what_it_created(tmp_path):
    """While the transition runs the endpoint's watcher reads nothing (its own writes must not
    compete with it); right after the transition the new directories are watched, so a user's
    edit inside one is reported, and edits made during the transition are not lost."""
    root = tmp_path / "beta"
    os.mkdir(root)

    async def scenario():
        changed = asyncio.Event()
        beta = LocalEndpoint(EndpointSettings(root=str(root), session="sync_test", side="beta",
                                              data_directory=str(tmp_path / "data"),
                                              watch_mode=WatchMode.PORTABLE),
                             on_change=changed.set)
        await beta.start()
        try:
            await beta.scan_async(full=True)
            during = []
            apply = beta.transition

            def transition(changes):
                result = apply(changes)
                write(str(root), "edited-during.txt", "user")
                # The loop thread is free meanwhile: had it been reading, it would have read.
                deadline = time.monotonic() + 0.3
                while time.monotonic() < deadline:
                    during.append(beta.watcher.statistics()["events"])
                    time.sleep(0.02)
                return result

            beta.transition = transition
            created = Entry.directory({"dir": Entry.directory({"deeper": Entry.directory()})})
            result = await beta.transition_async([Change("new", None, created)])
            assert not result.problems and os.path.isdir(root / "new" / "dir" / "deeper")
            assert set(during) == {0}
            await asyncio.sleep(0)  # the follow-up the transition scheduled runs first
            assert beta.watcher.statistics()["events"] > 0
            await asyncio.wait_for(changed.wait(), 10)  # the batch of the transition's paths
            assert "edited-during.txt" in beta.dirty
            changed.clear()
            beta.dirty.clear()  # what follows can only come from a watch on the new directory
            write(str(root), "new/dir/deeper/user.txt", "edit")
            deadline = time.monotonic() + 10
            while "new/dir/deeper/user.txt" not in beta.dirty:
                assert time.monotonic() < deadline, f"the edit was not reported: {beta.dirty}"
                await asyncio.wait_for(changed.wait(), 10)
                changed.clear()
        finally:
            await beta.stop()

    asyncio.run(scenario())
