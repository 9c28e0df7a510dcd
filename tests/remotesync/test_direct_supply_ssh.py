"""Content straight from sender to receiver with a remote (SSH) root: local alpha sends its
content itself to beta's daemon-side endpoint actor, which relays it to the agent (the stager
never carries it). An initial sync arrives byte-exact, a large file in pieces; the other way
(the remote sends) still goes through the stager (``Supply``); the staging progress adds up
while it runs; a link cut mid-transfer makes the receiver refuse, which fails the staging job
with the receiver's reason, and the session converges after reconnecting."""

from __future__ import annotations

import os
import random
import shutil

import pytest

from mutagen_actors.actors.syncsession.stager import TEST_RATE_VARIABLE
from mutagen_actors.wire.messages import sync as sm

from .conftest import (HomeDaemon, RemoteSync, leftovers, ssh_url, stop_home_daemon, tree,
                       wait_same, wait_until, write, write_as)
from .test_ssh_failures import connection_processes

MIB = 1 << 20


def log_events(daemon, name: str) -> list[dict]:
    return [e for e in daemon.log_lines() if e.get("event") == name]


@pytest.fixture(scope="module")
def slow_sync(sshd):  # noqa: F811
    """A daemon whose staging is capped at 2 MB/s (``stager.TEST_RATE_VARIABLE``)."""
    import tempfile

    base = tempfile.mkdtemp(prefix="mr-", dir="/tmp")
    home = os.path.join(base, "home")
    os.makedirs(home)
    os.symlink(sshd.client.directory, os.path.join(home, ".ssh"))
    handle = HomeDaemon(os.path.join(base, "data"), home=home,
                        extra={TEST_RATE_VARIABLE: str(2_000_000)})
    handle.start()
    yield RemoteSync(handle)
    stop_home_daemon(handle, base)


def test_initial_sync_to_ssh_goes_straight_and_back_through_the_stager(remote_sync, sshd,
                                                                        local_root):
    remote_root = os.path.join(sshd.home, "direct")
    shutil.rmtree(remote_root, ignore_errors=True)
    rng = random.Random(6)
    files = {f"d{i % 5}/f{i}.txt": rng.randbytes(rng.randrange(0, 20_000)) for i in range(300)}
    files["big.bin"] = rng.randbytes(3 * MIB + 1)
    for name, content in files.items():
        write(local_root, name, content)
    before = len(log_events(remote_sync.daemon, "staging done"))
    identifier = remote_sync.create_urls(sm.EndpointUrl(path=local_root), ssh_url("direct"))
    try:
        found = wait_same(local_root, remote_root, timeout=120)
        assert all(found[name][1] == content for name, content in files.items())
        done = log_events(remote_sync.daemon, "staging done")[before:]
        assert done and done[0]["direct"] is True and done[0]["refetched"] == 0
        assert done[0]["content_bytes"] == sum(len(c) for c in files.values())
        # the remote sends: through the stager, as before
        back = rng.randbytes(2 * MIB + 9)
        write_as(sshd.home, remote_root, "from-remote.bin", back)
        remote_sync.flush(identifier)
        wait_until(lambda: tree(local_root).get("from-remote.bin", (0, 0))[1] == back, 60,
                   what="the remote's file locally")
        done = log_events(remote_sync.daemon, "staging done")[before:]
        assert [e["direct"] for e in done] == [True, False]
        assert remote_sync.state(identifier).last_error == ""
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)


def test_progress_adds_up_and_a_cut_link_fails_the_job_with_the_receivers_reason(
        slow_sync, sshd, local_root):
    remote_root = os.path.join(sshd.home, "direct-cut")
    shutil.rmtree(remote_root, ignore_errors=True)
    rng = random.Random(8)
    files = {f"f{i}.bin": rng.randbytes(40_000) for i in range(150)}  # 6 MB: ~3 s at 2 MB/s
    files["big.bin"] = rng.randbytes(2 * MIB)
    for name, content in files.items():
        write(local_root, name, content)
    identifier = slow_sync.create_urls(sm.EndpointUrl(path=local_root), ssh_url("direct-cut"),
                                       paused=True)
    try:
        before = connection_processes(sshd)
        slow_sync.command(sm.SyncResume, identifier)
        seen = []

        def under_way():
            state = slow_sync.state(identifier)
            progress = state.beta.staging_progress
            if state.status == "staging-beta" and progress is not None:
                seen.append((progress.received_files, progress.expected_files,
                             progress.total_received_size, progress.total_expected_size))
            return len(seen) >= 3 and seen[-1][0] >= 20
        wait_until(under_way, 60, interval=0.02, what="staging to be under way")
        for received, expected, received_bytes, expected_bytes in seen:
            assert 0 <= received <= expected == len(files)
            assert 0 <= received_bytes <= expected_bytes
        assert [s[2] for s in seen] == sorted(s[2] for s in seen)  # never goes back
        cut = connection_processes(sshd) - before
        assert cut, "no ssh connection of the session found"
        for pid in cut:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        failed = wait_until(lambda: [e for e in log_events(slow_sync.daemon, "job failed")
                                     if e.get("actor") == "stager"], 30,
                            what="the staging job to fail")
        assert "link to" in failed[0]["error"] and "broke" in failed[0]["error"], failed[0]
        wait_same(local_root, remote_root, timeout=120)
        assert not leftovers(local_root, remote_root)
        slow_sync.wait_status(identifier, "watching", timeout=30)
    finally:
        slow_sync.command(sm.SyncTerminate, identifier)
