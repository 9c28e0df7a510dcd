"""SSH endpoints when things go wrong: host keys, unreachable hosts, a connection cut in the
middle of staging, conflicts resolved by mode after a pause."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import time

import pytest

from mutagen_actors.wire.messages import sync as sm

from remote import infra

from .conftest import (
    leftovers,
    ssh_url,
    start_home_daemon,
    stop_home_daemon,
    RemoteSync,
    wait_same,
    wait_until,
    write,
    write_as,
)


def connection_processes(sshd) -> set:
    """The sshd processes serving connections: the listener's children and the login user's
    ``sshd:`` processes (after authentication they may live on their own)."""
    found = set(sshd.session_processes())
    uid = pwd.getpwnam(sshd.user).pw_uid
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                command = handle.read()
            owner = os.stat(f"/proc/{name}").st_uid
        except OSError:
            continue
        if owner == uid and command.startswith(b"sshd"):
            found.add(int(name))
    return found


@pytest.fixture
def daemon_with_known_hosts(sshd, request):
    """A daemon whose ssh directory has ``request.param`` as known_hosts: "" (unknown key) or
    "wrong" (another key recorded for the server's address)."""
    known = ""
    if request.param == "wrong":
        other = infra.generate_key(os.path.join(sshd.root, f"other-{os.getpid()}"), "other")
        known = f"[127.0.0.1]:{sshd.port} {' '.join(other.split()[:2])}\n"
    directory = sshd.client_files(f"client-{request.param or 'unknown'}", known_hosts=known)
    handle, base = start_home_daemon(directory.directory)
    yield RemoteSync(handle)
    stop_home_daemon(handle, base)


@pytest.mark.parametrize("daemon_with_known_hosts, words", [
    ("", "not known"), ("wrong", "changed")], indirect=["daemon_with_known_hosts"])
def test_bad_host_key_refuses_create_and_leaves_no_session(daemon_with_known_hosts, words,
                                                           local_root):
    sync = daemon_with_known_hosts
    message = sync.refused(sm.SyncCreate(sm.EndpointUrl(path=local_root), ssh_url("project"),
                                         "", {}, False, sm.SyncConfiguration()))
    assert "host key" in message and words in message, message
    assert sync.list() == []


def test_closed_port_and_silent_host_fail_within_the_connect_timeout(remote_sync, local_root):
    closed = infra.free_port()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts TCP, never says a word: like a host that does not answer
    try:
        for port, words in ((closed, f"unable to connect to 127.0.0.1:{closed}: connection "
                                     f"refused"),
                            (silent.getsockname()[1], "no answer within 5 s")):
            url = sm.EndpointUrl(protocol="ssh", host="127.0.0.1", port=port, path="x")
            started = time.monotonic()
            message = remote_sync.refused(sm.SyncCreate(sm.EndpointUrl(path=local_root), url, "",
                                                        {}, False, sm.SyncConfiguration()))
            elapsed = time.monotonic() - started
            assert f"127.0.0.1:{port}" in message and words in message.lower(), message
            assert elapsed < 8.0, elapsed  # the ssh connect timeout is 5 s
    finally:
        silent.close()
    assert remote_sync.list() == []


def test_connection_cut_while_staging_reconnects_and_converges(remote_sync, sshd, local_root):
    remote_root = os.path.join(sshd.home, "cut")
    shutil.rmtree(remote_root, ignore_errors=True)
    for index in range(1500):
        write(local_root, f"d{index % 20}/f{index}.bin", os.urandom(48 * 1024))
    identifier = remote_sync.create_urls(sm.EndpointUrl(path=local_root), ssh_url("cut"),
                                         paused=True)
    try:
        before = connection_processes(sshd)
        remote_sync.command(sm.SyncResume, identifier)

        def staging_half_way():
            state = remote_sync.state(identifier)
            progress = state.beta.staging_progress
            return state.status == "staging-beta" and progress is not None and \
                progress.received_files >= 100
        wait_until(staging_half_way, 60, interval=0.01, what="staging to be under way")
        cut = connection_processes(sshd) - before
        assert cut, "no ssh connection of the session found"
        for pid in cut:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not remote_sync.state(identifier).beta.connected or
                   remote_sync.state(identifier).last_error, 15, interval=0.02,
                   what="the session to notice the cut")
        wait_same(local_root, remote_root, timeout=120)
        state = remote_sync.wait_status(identifier, "watching", timeout=30)
        assert state.beta.connected
        assert not leftovers(local_root, remote_root)
        assert connection_processes(sshd) - before - cut, "no new connection"
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)


def test_two_way_resolved_alpha_wins_after_pause_and_resume(remote_sync, sshd, local_root):
    remote_root = os.path.join(sshd.home, "resolved")
    shutil.rmtree(remote_root, ignore_errors=True)
    write(local_root, "shared.txt", "base")
    identifier = remote_sync.create_urls(sm.EndpointUrl(path=local_root), ssh_url("~/resolved"),
                                         mode="two-way-resolved")
    try:
        wait_same(local_root, remote_root)
        remote_sync.command(sm.SyncPause, identifier)
        write(local_root, "shared.txt", "alpha's edit")
        write_as(sshd.home, remote_root, "shared.txt", "beta's edit")
        write_as(sshd.home, remote_root, "beta-new.txt", "new on beta")
        remote_sync.command(sm.SyncResume, identifier)
        found = wait_same(local_root, remote_root)
        assert found["shared.txt"] == ("file", b"alpha's edit", False)
        assert found["beta-new.txt"] == ("file", b"new on beta", False)
        assert remote_sync.state(identifier).conflicts == []
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)
