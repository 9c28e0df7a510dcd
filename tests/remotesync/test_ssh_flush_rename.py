"""Flush and directory renames with an SSH endpoint, end to end: a flush right after a change on
either side returns with the change on the other side (the agent drains its watcher first), and
renamed directories arrive whole (their metadata crosses the tunnel as references, expanded on
the daemon side: ``agent/compaction.py``)."""

from __future__ import annotations

import os
import shutil

from mutagen_actors.wire.messages import sync as sm

from .conftest import leftovers, ssh_url, tree, wait_same, write, write_as


def test_flush_after_changes_and_directory_renames_both_ways(remote_sync, sshd, local_root):
    remote_root = os.path.join(sshd.home, "project-flush")
    shutil.rmtree(remote_root, ignore_errors=True)
    for i in range(24):
        write(local_root, f"big/s{i % 4}/f{i}.txt", f"content {i}")
    identifier = remote_sync.create_urls(sm.EndpointUrl(path=local_root),
                                         ssh_url("project-flush"))
    try:
        wait_same(local_root, remote_root, timeout=60)

        def local_rename(source: str, target: str) -> None:
            os.makedirs(os.path.dirname(os.path.join(local_root, target)) or local_root,
                        exist_ok=True)
            os.rename(os.path.join(local_root, source), os.path.join(local_root, target))

        def remote_rename(source: str, target: str) -> None:
            os.rename(os.path.join(remote_root, source), os.path.join(remote_root, target))

        steps = [
            lambda: local_rename("big", "moved/big2"),  # the transition on the remote moves it
            lambda: write_as(sshd.home, remote_root, "moved/big2/s1/f1.txt", "edited remotely"),
            lambda: remote_rename("moved/big2", "back"),  # the transition here moves it
            lambda: local_rename("back/s2", "back/s2-renamed"),
            lambda: write(local_root, "back/s2-renamed/new.txt", "new"),
            lambda: shutil.rmtree(os.path.join(remote_root, "back/s3")),
            lambda: local_rename("back", "final"),
        ]
        for number, step in enumerate(steps):
            step()
            remote_sync.flush(identifier, timeout=60)
            assert tree(local_root) == tree(remote_root), f"step {number} not synced by flush"
        final = tree(remote_root)
        assert final["final/s1/f1.txt"] == ("file", b"edited remotely", False)
        assert final["final/s2-renamed/new.txt"] == ("file", b"new", False)
        assert "final/s3" not in final and "big" not in final and "moved/big2" not in final
        state = remote_sync.state(identifier)
        assert state.last_error == "" and not state.conflicts
        assert not leftovers(local_root, remote_root)
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)
