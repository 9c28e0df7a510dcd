"""A daemon-side connect to a remote runs in a child process (``supervisor.remote_probe``):
after creating a session with an SSH endpoint the daemon has not loaded asyncssh or
cryptography (issue 6, memory); the create itself does not probe (the session's endpoint actor
connects once); the probe child's own errors are clear."""

from __future__ import annotations

import os
import shutil

from mutagen_actors.wire.messages import sync as sm

from .conftest import ssh_url, wait_same, write


def _daemon_pid(data_dir: str) -> int:
    with open(os.path.join(data_dir, "daemon", "daemon.lock")) as stream:
        return int(stream.read().strip())


def _mapped(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as maps:
        return maps.read()


def test_the_daemon_does_not_load_asyncssh_for_a_remote_create(remote_sync, sshd, local_root):
    """Nor the remote endpoint actor's module (the tunnel, lz4). The create makes one SSH
    connection, the beta endpoint actor's: no probe child."""
    remote_root = os.path.join(sshd.home, "project-probe-child")
    shutil.rmtree(remote_root, ignore_errors=True)
    write(local_root, "one.txt", "one")
    identifier = remote_sync.create_urls(sm.EndpointUrl(path=local_root),
                                         ssh_url("project-probe-child"))
    try:
        wait_same(local_root, remote_root)
        maps = _mapped(_daemon_pid(remote_sync.daemon.data_dir))
        assert "cryptography" not in maps and "asyncssh" not in maps and "lz4" not in maps
        assert "libcrypto" not in maps and "libssl" not in maps  # cli/__main__: without_openssl
        lines = remote_sync.daemon.log_lines()
        assert not [line for line in lines if line.get("actor") == "probe"], "a probe ran"
        connects = [line for line in lines if line.get("event") == "ssh connected"
                    and line.get("session") == identifier]
        assert len(connects) == 1, connects
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connect_is_the_childs_clear_error(tmp_path):
    import asyncio

    import pytest

    from mutagen_actors.supervisor.remote_probe import ProbeFailed, run_probe
    from mutagen_actors.supervisor.urls import Url

    port = _closed_port()
    steps: list[str] = []
    with pytest.raises(ProbeFailed) as failure:
        asyncio.run(run_probe("endpoint", Url("ssh", "", "127.0.0.1", port, "x"),
                              data_directory=str(tmp_path), steps=steps, timeout=20))
    assert not failure.value.internal
    assert "127.0.0.1" in str(failure.value) and str(port) in str(failure.value)
    with pytest.raises(ProbeFailed) as failure:
        asyncio.run(run_probe("no-such-operation", Url("ssh", "", "127.0.0.1", port, "x"),
                              timeout=20))
    assert failure.value.internal and "no-such-operation" in str(failure.value)
