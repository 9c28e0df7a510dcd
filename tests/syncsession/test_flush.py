"""``sync flush`` right after a change, against a real daemon: when the flush returns, the other
side already has the change (no waiting), whether the change's watcher events were read yet or
not. With native watching the flush scans only the dirty paths; with polling it scans in full."""

from __future__ import annotations

import os
import shutil

import pytest

from mutagen_actors.wire.messages import sync as sm

from .conftest import tree, wait_same, write


def changes(side: str):
    """Different changes on one side, in subdirectories: creations, edits, deletions, file
    and directory renames, new nested trees, subtree deletions, mode changes."""
    steps = []
    for i in range(7):
        d = f"{side}{i}"
        steps += [
            lambda r, d=d: write(r, f"{d}/x/new.txt", f"new {d}"),
            lambda r, d=d: write(r, f"{d}/x/new.txt", f"edited {d}"),
            lambda r, d=d: os.rename(os.path.join(r, f"{d}/x/new.txt"),
                                     os.path.join(r, f"{d}/moved.txt")),
            lambda r, d=d: os.rename(os.path.join(r, f"{d}/x"), os.path.join(r, f"{d}/y")),
            lambda r, d=d: os.chmod(os.path.join(r, f"{d}/moved.txt"), 0o755),
            lambda r, d=d: os.unlink(os.path.join(r, f"{d}/moved.txt")),
            lambda r, d=d: shutil.rmtree(os.path.join(r, d)),
        ]
    steps.append(lambda r: write(r, f"deep/{side}/a/b/c/file.txt", "deep"))
    return steps


@pytest.mark.parametrize("watch_mode", ["portable", "force-poll"])
def test_flush_right_after_each_change_has_already_propagated_it(shared_sync, roots, watch_mode):
    sync = shared_sync
    alpha, beta = roots
    for i in range(20):
        write(alpha, f"seed/s{i % 4}/f{i}.txt", f"seed {i}")
    identifier = sync.create(alpha, beta, watch_mode=watch_mode, watch_polling_interval=3600)
    try:
        wait_same(alpha, beta, timeout=30)
        steps = [(step, root) for pair in zip(changes("a"), changes("b"))
                 for step, root in zip(pair, (alpha, beta))][:50]
        for number, (change, here) in enumerate(steps):
            there = beta if here == alpha else alpha
            change(here)
            sync.flush(identifier, timeout=60)
            assert tree(there) == tree(here), f"change {number} not there when flush returned"
        state = sync.state(identifier)
        assert state.last_error == "" and not state.conflicts
    finally:
        sync.command(sm.SyncTerminate, identifier)
