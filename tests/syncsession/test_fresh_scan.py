"""A flush's "fresh" scan on the endpoint shell (real filesystem, real inotify): incremental
behind the watcher barrier when watching is native, full otherwise; and it always sees a change
made just before it, even one whose events the watcher has not read or coalesced yet."""

from __future__ import annotations

import asyncio
import os
import shutil
import time

import pytest

from mutagen_actors.actors.sync.model import Kind
from mutagen_actors.actors.sync.settings import ScanMode, WatchMode
from mutagen_actors.actors.sync.watching import Watcher
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint

from .conftest import write


def paths(entry, prefix: str = "") -> dict:
    """Relative path -> kind of every entry below ``entry``."""
    found = {}
    for name, child in (entry.contents or {}).items():
        path = f"{prefix}{name}"
        found[path] = child.kind
        if child.kind == Kind.DIRECTORY:
            found.update(paths(child, path + "/"))
    return found


def on_disk(root: str) -> dict:
    found = {}
    for directory, names, files in os.walk(root):
        for name in names + files:
            relative = os.path.relpath(os.path.join(directory, name), root)
            found[relative] = Kind.DIRECTORY if name in names else Kind.FILE
    return found


CHANGES = [
    ("create in a subdirectory", lambda r: write(r, "a/b/new.txt", "new")),
    ("edit", lambda r: write(r, "a/one.txt", "edited")),
    ("delete", lambda r: os.unlink(os.path.join(r, "a/one.txt"))),
    ("rename across directories", lambda r: os.rename(os.path.join(r, "a/b/two.txt"),
                                                      os.path.join(r, "c/two.txt"))),
    ("directory rename", lambda r: os.rename(os.path.join(r, "a/b"), os.path.join(r, "c/b2"))),
    ("new nested tree", lambda r: write(r, "d/e/f/deep.txt", "deep")),
    ("subtree deletion", lambda r: shutil.rmtree(os.path.join(r, "a"))),
]


@pytest.mark.parametrize("watch_mode, scan_mode, incremental", [
    (WatchMode.PORTABLE, ScanMode.ACCELERATED, True),
    (WatchMode.PORTABLE, ScanMode.FULL, False),
    (WatchMode.FORCE_POLL, ScanMode.ACCELERATED, False),
    (WatchMode.NO_WATCH, ScanMode.ACCELERATED, False),
])
def test_a_fresh_scan_sees_a_change_made_just_before_it(tmp_path, watch_mode, scan_mode,
                                                        incremental):
    root = str(tmp_path / "root")
    for name in ("a/one.txt", "a/b/two.txt", "c/three.txt"):
        write(root, name, name)
    settings = EndpointSettings(root=root, session="sync_fresh", side="alpha",
                                data_directory=str(tmp_path / "data"), watch_mode=watch_mode,
                                watch_polling_interval=3600, scan_mode=scan_mode)

    async def run():
        endpoint = LocalEndpoint(settings)
        await endpoint.start()
        try:
            first = await endpoint.scan_async(False, fresh=True)
            assert endpoint.last_scan_full  # the first scan is always complete
            assert paths(first.root) == on_disk(root)
            for what, change in CHANGES:
                change(root)  # no await in between: the watcher has not read anything yet
                result = await endpoint.scan_async(False, fresh=True)
                assert paths(result.root) == on_disk(root), what
                assert endpoint.last_scan_full is not incremental, what
        finally:
            await endpoint.stop()

    asyncio.run(run())


def test_a_non_fresh_scan_of_a_polling_side_stays_cheap(tmp_path):
    """Cycles started by the other side's changes do not force a polling side to walk its tree
    (its poll ticks do that); only a flush does."""
    root = str(tmp_path / "root")
    write(root, "a.txt", "a")
    settings = EndpointSettings(root=root, session="sync_fresh", side="beta",
                                data_directory=str(tmp_path / "data"),
                                watch_mode=WatchMode.FORCE_POLL, watch_polling_interval=3600)

    async def run():
        endpoint = LocalEndpoint(settings)
        await endpoint.start()
        try:
            await endpoint.scan_async(False)
            write(root, "b.txt", "b")
            await endpoint.scan_async(False)
            assert not endpoint.last_scan_full
            result = await endpoint.scan_async(False, fresh=True)
            assert endpoint.last_scan_full and "b.txt" in result.root.contents
        finally:
            await endpoint.stop()

    asyncio.run(run())


def test_the_watcher_barrier_hands_out_queued_events_at_once(tmp_path):
    """``drain`` returns changes whose events are still in the kernel queue or inside the
    coalescing window, and costs milliseconds, not the window (here one second)."""
    root = str(tmp_path / "root")
    os.makedirs(os.path.join(root, "sub"))

    async def run():
        watcher = Watcher(root, mode=WatchMode.PORTABLE, polling_interval=10, coalesce=1.0)
        await watcher.start()
        try:
            assert watcher.native and watcher.drain() is None
            for i in range(200):
                write(root, f"sub/f{i}.txt", "x")
            started = time.perf_counter()
            batch = watcher.drain()
            elapsed = time.perf_counter() - started
            assert batch is not None and not batch.rescan_all
            assert batch.paths == {f"sub/f{i}.txt" for i in range(200)}
            assert elapsed < 0.5
            write(root, "late.txt", "x")
            await asyncio.sleep(0)  # let the loop read the events: now inside the window
            assert watcher.drain().paths == {"late.txt"}
            assert watcher.drain() is None
        finally:
            await watcher.stop()
        assert not watcher.native

    asyncio.run(run())
