"""The watcher against the real filesystem: what an endpoint would observe as batches.

Every wait is ``next_batch(timeout=...)`` with a deadline. To show that something is NOT
reported, a sentinel file is written afterwards and the batches are collected until the
sentinel shows up (inotify delivers events of one instance in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from mutagen_actors.actors.sync.ignore import compile_ignores
from mutagen_actors.actors.sync.settings import TEMPORARY_PREFIX, IgnoreSyntax, WatchMode
from mutagen_actors.actors.sync.watching import WatchBatch, Watcher

DEADLINE = 10.0


def run(coroutine):
    return asyncio.run(coroutine)


@contextlib.asynccontextmanager
async def started(root, **kwargs):
    kwargs.setdefault("mode", WatchMode.PORTABLE)
    kwargs.setdefault("polling_interval", 10)
    watcher = Watcher(str(root), **kwargs)
    await watcher.start()
    try:
        yield watcher
    finally:
        await watcher.stop()


async def gather_until(watcher, done, timeout=DEADLINE) -> list[WatchBatch]:
    """Collect batches until ``done(batches)`` or the deadline (then return what came)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    batches: list[WatchBatch] = []
    while not done(batches):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        batch = await watcher.next_batch(timeout=remaining)
        if batch is None:
            break
        batches.append(batch)
    return batches


def dirty(batches) -> set[str]:
    return set().union(*(batch.paths for batch in batches)) if batches else set()


def seen(*paths):
    return lambda batches: set(paths) <= dirty(batches)


def rescanned(batches) -> bool:
    return any(batch.rescan_all for batch in batches)


def write(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ---------------------------------------------------------------------------- edits


def _pre_file(root):
    write(root / "a" / "f.txt", "old")


def _append(path):
    with open(path, "a") as handle:
        handle.write("+")


EDITS = {
    "create file": (None, lambda r: write(r / "new.txt"), {"new.txt"}),
    "modify file": (_pre_file, lambda r: (r / "a" / "f.txt").write_text("new"), {"a/f.txt"}),
    "append to file": (_pre_file, lambda r: _append(r / "a" / "f.txt"), {"a/f.txt"}),
    "truncate file": (_pre_file, lambda r: os.truncate(r / "a" / "f.txt", 0), {"a/f.txt"}),
    "delete file": (_pre_file, lambda r: os.remove(r / "a" / "f.txt"), {"a/f.txt"}),
    "rename file": (_pre_file, lambda r: os.rename(r / "a" / "f.txt", r / "b.txt"), {"a/f.txt", "b.txt"}),
    "chmod +x": (_pre_file, lambda r: os.chmod(r / "a" / "f.txt", 0o755), {"a/f.txt"}),
    "create symlink": (_pre_file, lambda r: os.symlink("f.txt", r / "a" / "link"), {"a/link"}),
    "make directory": (None, lambda r: os.mkdir(r / "d"), {"d"}),
    "remove directory": (lambda r: os.makedirs(r / "a" / "e"), lambda r: os.rmdir(r / "a" / "e"), {"a/e"}),
    "rename directory": (_pre_file, lambda r: os.rename(r / "a", r / "c"), {"a", "c"}),
    "hard link": (_pre_file, lambda r: os.link(r / "a" / "f.txt", r / "h"), {"h"}),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_edit_is_reported(tmp_path, name):
    prepare, edit, expected = EDITS[name]
    root = tmp_path / "root"
    root.mkdir()
    if prepare:
        prepare(root)

    async def scenario():
        async with started(root) as watcher:
            edit(root)
            batches = await gather_until(watcher, seen(*expected))
            assert dirty(batches) == expected
            assert not rescanned(batches)

    run(scenario())


def test_new_nested_directory_is_reported_whole_and_then_watched(tmp_path):
    root = tmp_path / "root"
    root.mkdir()

    async def scenario():
        async with started(root) as watcher:
            # created faster than any watch can be added: reported as the new top directory
            os.makedirs(root / "n" / "m" / "k")
            write(root / "n" / "m" / "k" / "early.txt")
            write(root / "n" / "top.txt")
            batches = await gather_until(watcher, seen("n"))
            assert "n" in dirty(batches)
            assert not rescanned(batches)
            # and the deepest directory is now watched
            write(root / "n" / "m" / "k" / "late.txt")
            batches = await gather_until(watcher, seen("n/m/k/late.txt"))
            assert "n/m/k/late.txt" in dirty(batches)
            assert watcher.statistics()["watches"] == 4

    run(scenario())


def test_ignored_directories_are_not_watched_and_ignored_names_not_reported(tmp_path):
    root = tmp_path / "root"
    for directory in ("src/lib", "node_modules/pkg/lib", ".git/objects"):
        os.makedirs(root / directory)
    ignorer = compile_ignores(["node_modules", "*.o"], IgnoreSyntax.MUTAGEN, ignore_vcs=True)

    async def scenario():
        async with started(root, ignorer=ignorer) as watcher:
            assert watcher.statistics()["watches"] == 3  # root, src, src/lib
            write(root / "node_modules" / "pkg" / "lib" / "x.js")
            write(root / ".git" / "objects" / "ab")
            write(root / "src" / "main.o")
            os.makedirs(root / "src" / "node_modules" / "dep")  # new, ignored: never watched
            write(root / "src" / "node_modules" / "dep" / "y.js")
            write(root / "src" / "lib" / "sentinel")
            batches = await gather_until(watcher, seen("src/lib/sentinel"))
            assert dirty(batches) == {"src/lib/sentinel"}
            assert watcher.statistics()["watches"] == 3

    run(scenario())


def test_temporary_names_are_never_reported_nor_watched(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    staged = root / f"{TEMPORARY_PREFIX}1234"
    staging_dir = root / f"{TEMPORARY_PREFIX}staging"

    async def scenario():
        async with started(root) as watcher:
            write(staged, "content")
            os.rename(staged, root / "final.txt")  # the atomic rename into place is reported
            os.makedirs(staging_dir / "ab")
            write(staging_dir / "ab" / "blob")
            write(root / "sentinel")
            batches = await gather_until(watcher, seen("final.txt", "sentinel"))
            assert dirty(batches) == {"final.txt", "sentinel"}
            assert watcher.statistics()["watches"] == 1

    run(scenario())


@pytest.mark.parametrize("window", [0.01, 0.05])
def test_many_writes_are_coalesced_into_few_batches(tmp_path, window):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    count = 1000
    names = {f"d/f{i}" for i in range(count)}
    elapsed = []

    def writer():
        began = time.monotonic()
        for i in range(count):
            with open(root / "d" / f"f{i}", "w") as handle:
                handle.write("x")
        elapsed.append(time.monotonic() - began)

    async def scenario():
        async with started(root, coalesce=window) as watcher:
            thread = threading.Thread(target=writer)
            thread.start()  # writes while the watcher is reading: many coalescing windows
            batches = await gather_until(watcher, seen(*names))
            await asyncio.to_thread(thread.join)
            assert dirty(batches) == names
            # every batch but the last waited out a full window after its first event
            assert len(batches) <= elapsed[0] / window + 2, (len(batches), elapsed)
            if window >= 0.05:  # (with 10 ms the count depends on how slow the disk is today)
                assert len(batches) <= count // 10, (len(batches), elapsed)

    run(scenario())


def overflow_the_queue(directory) -> None:
    """More events under ``directory`` than the kernel queues (``max_queued_events``), written
    without yielding to the event loop: the queue overflows unless something reads it meanwhile.
    Alternating names defeats the kernel's merging of identical events."""
    with open("/proc/sys/fs/inotify/max_queued_events") as handle:
        queue = int(handle.read())
    if queue > 200_000:
        pytest.fail(f"inotify queue too large to overflow quickly ({queue} events)")
    one, two = directory / "one", directory / "two"
    write(one)
    write(two)
    for i in range(queue + 2000):
        os.chmod(one if i % 2 else two, 0o600 if i % 4 < 2 else 0o644)


def test_queue_overflow_forces_a_full_rescan_and_rewatches(tmp_path):
    root = tmp_path / "root"
    os.makedirs(root / "a")

    async def scenario():
        async with started(root) as watcher:
            overflow_the_queue(root / "a")  # the event loop cannot read while this runs
            batches = await gather_until(watcher, rescanned)
            assert rescanned(batches)
            assert watcher.statistics()["overflows"] >= 1
            assert watcher.state == "watching (inotify)"
            write(root / "a" / "after")
            batches = await gather_until(watcher, seen("a/after"))
            assert "a/after" in dirty(batches)

    run(scenario())


def _userns_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c", "test -w /proc/sys/user/max_inotify_watches"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


LIMIT_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from mutagen_actors.actors.sync.settings import WatchMode
    from mutagen_actors.actors.sync.watching import Watcher

    big, small, limit = sys.argv[1], sys.argv[2], sys.argv[3]
    # Only this user namespace gets the tiny limit; the machine's setting is untouched.
    with open("/proc/sys/user/max_inotify_watches", "w") as handle:
        handle.write(limit)

    def show(batch):
        return None if batch is None else {"paths": sorted(batch.paths), "rescan_all": batch.rescan_all}

    async def main():
        out = {}
        watcher = Watcher(big, mode=WatchMode.PORTABLE, polling_interval=0.2)
        await watcher.start()
        out["start_state"] = watcher.state
        out["start_watches"] = watcher.statistics()["watches"]
        out["start_batch"] = show(await watcher.next_batch(timeout=10))
        await watcher.stop()

        watcher = Watcher(small, mode=WatchMode.PORTABLE, polling_interval=0.2)
        await watcher.start()
        out["small_state"] = watcher.state
        os.makedirs(os.path.join(small, "grown", "b", "c", "d", "e", "f"))
        out["grown_batch"] = show(await watcher.next_batch(timeout=10))
        out["grown_state"] = watcher.state
        out["grown_watches"] = watcher.statistics()["watches"]
        out["tick_batch"] = show(await watcher.next_batch(timeout=10))
        await watcher.stop()

        with open("/proc/sys/user/max_inotify_instances", "w") as handle:
            handle.write("0")
        watcher = Watcher(small, mode=WatchMode.PORTABLE, polling_interval=0.2)
        await watcher.start()
        out["no_instance_state"] = watcher.state
        await watcher.stop()
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def test_watch_limit_falls_back_to_polling_and_says_so(tmp_path):
    """A real ENOSPC from inotify_add_watch: the limit is lowered to 5 watches inside a
    private user namespace (the system-wide limit, shared with everyone, is not touched).
    Then the instance limit is lowered to 0 there: EMFILE from inotify_init also polls."""
    if not _userns_available():
        pytest.fail("unprivileged user namespaces with a writable inotify limit are not available")
    big, small = tmp_path / "big", tmp_path / "small"
    for i in range(10):
        os.makedirs(big / f"d{i}")
    os.makedirs(small / "one")
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", sys.executable, "-c", LIMIT_SCRIPT, str(big), str(small), "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr

    out = json.loads(result.stdout.strip().splitlines()[-1])
    polling = "polling every 0.2 s (inotify watch limit reached: 5 watches)"
    assert out["start_state"] == polling
    assert out["start_watches"] == 0  # everything released for other programs
    assert out["start_batch"] == {"paths": [], "rescan_all": True}  # the first poll tick
    assert out["small_state"] == "watching (inotify)"
    assert out["grown_batch"] == {"paths": [], "rescan_all": True}
    assert out["grown_state"] == polling
    assert out["grown_watches"] == 0
    assert out["tick_batch"] == {"paths": [], "rescan_all": True}
    assert out["no_instance_state"] == (
        "polling every 0.2 s (inotify instance limit reached (fs.inotify.max_user_instances))"
    )


# ---------------------------------------------------------------------------- modes


def test_force_poll_emits_full_rescans_every_interval(tmp_path):
    async def scenario():
        async with started(tmp_path, mode=WatchMode.FORCE_POLL, polling_interval=0.1) as watcher:
            assert watcher.state == "polling every 0.1 s"
            loop = asyncio.get_running_loop()
            began = loop.time()
            batches = await gather_until(watcher, lambda b: len(b) >= 2)
            assert [batch.rescan_all for batch in batches] == [True, True]
            assert loop.time() - began >= 0.15
            assert watcher.statistics()["watches"] == 0

    run(scenario())


def test_no_watch_never_emits(tmp_path):
    async def scenario():
        async with started(tmp_path, mode=WatchMode.NO_WATCH) as watcher:
            assert watcher.state == "not watching"
            write(tmp_path / "f")
            assert await watcher.next_batch(timeout=0.3) is None

    run(scenario())


def test_polling_interval_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="polling interval must be positive"):
        Watcher(str(tmp_path), mode=WatchMode.PORTABLE, polling_interval=0)


# ---------------------------------------------------------------------------- the root


def test_root_created_later_is_watched_once_it_exists(tmp_path):
    root = tmp_path / "later" / "deeper" / "root"

    async def scenario():
        async with started(root) as watcher:
            assert watcher.state == f"watching for the root to be created (inotify on {tmp_path})"
            os.makedirs(root / "sub")
            write(root / "sub" / "first")
            batches = await gather_until(watcher, rescanned)
            assert rescanned(batches)
            assert watcher.state == "watching (inotify)"
            write(root / "sub" / "second")
            batches = await gather_until(watcher, seen("sub/second"))
            assert "sub/second" in dirty(batches)

    run(scenario())


def test_root_below_a_symlinked_parent_is_awaited_through_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "link")
    root = tmp_path / "link" / "root"

    async def scenario():
        async with started(root) as watcher:
            assert watcher.state == f"watching for the root to be created (inotify on {tmp_path / 'link'})"
            os.mkdir(tmp_path / "real" / "root")
            batches = await gather_until(watcher, rescanned)
            assert rescanned(batches)
            assert watcher.state == "watching (inotify)"

    run(scenario())


def test_root_deleted_forces_a_rescan_and_waits_for_it_again(tmp_path):
    root = tmp_path / "root"
    write(root / "a" / "f")

    async def scenario():
        async with started(root) as watcher:
            shutil.rmtree(root)
            batches = await gather_until(watcher, rescanned)
            assert rescanned(batches)
            assert watcher.state == f"watching for the root to be created (inotify on {tmp_path})"
            assert watcher.statistics()["watches"] == 0

    run(scenario())


def test_root_replaced_forces_a_rescan_and_watches_the_new_tree(tmp_path):
    root, old, new = tmp_path / "root", tmp_path / "old", tmp_path / "new"
    write(root / "a" / "f")
    write(new / "b" / "g")

    async def scenario():
        async with started(root) as watcher:
            os.rename(root, old)
            os.rename(new, root)
            batches = await gather_until(watcher, rescanned)
            assert rescanned(batches)
            assert watcher.state == "watching (inotify)"
            write(old / "a" / "stale")  # the moved-away tree is no longer ours
            write(root / "b" / "fresh")
            batches = await gather_until(watcher, seen("b/fresh"))
            assert dirty(batches) == {"b/fresh"}

    run(scenario())


def test_directory_moved_out_is_forgotten_and_moved_in_is_watched(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(root / "a" / "x" / "f")
    write(outside / "b" / "y" / "g")

    async def scenario():
        async with started(root) as watcher:
            os.rename(root / "a", outside / "a")
            os.rename(outside / "b", root / "b")
            batches = await gather_until(watcher, seen("a", "b"))
            assert dirty(batches) == {"a", "b"}
            write(outside / "a" / "x" / "stale")
            write(root / "b" / "y" / "fresh")
            batches = await gather_until(watcher, seen("b/y/fresh"))
            assert dirty(batches) == {"b/y/fresh"}
            assert watcher.statistics()["watches"] == 3  # root, b, b/y

    run(scenario())


def test_file_root_changes_force_a_rescan(tmp_path):
    root = tmp_path / "single.txt"
    root.write_text("one")

    async def scenario():
        async with started(root) as watcher:
            assert watcher.state == f"watching the root's parent directory (inotify on {tmp_path})"
            root.write_text("two")
            batches = await gather_until(watcher, rescanned)
            assert rescanned(batches)
            # replaced by a directory: becomes a watched tree
            root.unlink()
            root.mkdir()
            await gather_until(watcher, lambda b: watcher.state == "watching (inotify)")
            assert watcher.state == "watching (inotify)"

    run(scenario())


# ---------------------------------------------------------------------------- endpoint hooks


def test_note_changed_adds_the_paths_to_the_next_batch(tmp_path):
    root = tmp_path / "root"
    write(root / "a" / "f")

    async def scenario():
        async with started(root) as watcher:
            watcher.note_changed(["a/f", f"a/{TEMPORARY_PREFIX}x"])
            write(root / "b")
            batches = await gather_until(watcher, seen("a/f", "b"))
            assert dirty(batches) == {"a/f", "b"}

    run(scenario())


def test_note_changed_triggers_a_poll_when_polling(tmp_path):
    async def scenario():
        async with started(tmp_path, mode=WatchMode.FORCE_POLL, polling_interval=600) as watcher:
            watcher.note_changed(["x"])
            batch = await watcher.next_batch(timeout=DEADLINE)
            assert batch == WatchBatch(frozenset(), True)

    run(scenario())


def test_a_held_watcher_reads_nothing_until_released_then_reports_and_watches(tmp_path):
    root = tmp_path / "root"
    write(root / "a")

    async def scenario():
        async with started(root) as watcher:
            watcher.hold()
            write(root / "new" / "deep" / "f")
            assert await watcher.next_batch(timeout=0.3) is None
            assert watcher.statistics()["events"] == 0  # queued in the kernel, not read
            watcher.release()
            assert watcher.statistics()["events"] > 0  # read at once
            batches = await gather_until(watcher, seen("new"))
            assert "new" in dirty(batches)
            # The directories that appeared while held are watched now.
            write(root / "new" / "deep" / "after")
            batches = await gather_until(watcher, seen("new/deep/after"))
            assert "new/deep/after" in dirty(batches)

    run(scenario())


def test_drain_reads_what_queued_while_held(tmp_path):
    async def scenario():
        async with started(tmp_path) as watcher:
            watcher.hold()
            write(tmp_path / "b")
            batch = watcher.drain()  # the flush barrier does not depend on the reader
            assert batch is not None and "b" in batch.paths
            watcher.release()

    run(scenario())


def test_an_overflow_while_held_becomes_a_full_rescan(tmp_path):
    async def scenario():
        async with started(tmp_path) as watcher:
            watcher.hold()
            overflow_the_queue(tmp_path)
            await asyncio.sleep(0)  # a loop turn while held: nothing is read
            assert watcher.statistics()["events"] == 0
            watcher.release()
            batches = await gather_until(watcher, rescanned)
            assert rescanned(batches) and watcher.statistics()["overflows"] >= 1
            write(tmp_path / "after")
            assert "after" in dirty(await gather_until(watcher, seen("after")))

    run(scenario())


@pytest.mark.parametrize("mode", [WatchMode.PORTABLE, WatchMode.FORCE_POLL, WatchMode.NO_WATCH])
def test_hold_and_release_around_a_stop_are_harmless(tmp_path, mode):
    async def scenario():
        watcher = Watcher(str(tmp_path), mode=mode, polling_interval=600)
        await watcher.start()
        watcher.hold()
        await watcher.stop()
        watcher.release()
        assert await watcher.next_batch(timeout=DEADLINE) is None
        assert watcher.state == "not watching (stopped)"

    run(scenario())


class BrokenIgnorer:
    """An ignorer that starts failing on demand (a bug elsewhere must not silence watching)."""

    broken = False

    def ignored(self, path: str, directory: bool) -> bool:
        if self.broken:
            raise RuntimeError("ignorer exploded")
        return False


def test_an_internal_failure_turns_into_a_rescan_and_polling(tmp_path):
    ignorer = BrokenIgnorer()

    async def scenario():
        async with started(tmp_path, ignorer=ignorer, polling_interval=600) as watcher:
            ignorer.broken = True
            os.makedirs(tmp_path / "d")
            batches = await gather_until(watcher, rescanned)
            assert rescanned(batches)
            assert watcher.state == "polling every 600 s (watching failed: ignorer exploded)"

    run(scenario())


def test_stop_releases_watches_and_ends_waits(tmp_path):
    for i in range(50):
        os.makedirs(tmp_path / f"d{i}" / "e")

    async def scenario():
        watcher = Watcher(str(tmp_path), mode=WatchMode.PORTABLE, polling_interval=10)
        await watcher.start()
        assert watcher.statistics()["watches"] == 101
        waiter = asyncio.ensure_future(watcher.next_batch(timeout=DEADLINE))
        await watcher.stop()
        assert await asyncio.wait_for(waiter, DEADLINE) is None
        assert watcher.statistics()["watches"] == 0
        assert watcher.state == "not watching (stopped)"
        assert await watcher.next_batch(timeout=0) is None

    run(scenario())
