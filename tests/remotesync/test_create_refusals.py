"""``sync create`` against a remote that cannot be used, with no probe connection before the
session: the session's own endpoint actor connects, and its first failed attempt is the
refusal. What the user sees: one error line naming the side and what was wrong, exit status 1,
soon (not after the connect deadline), and nothing left behind (no session, no record, archive,
cache or staging directory in the data directory, no actor process).

Real servers: the private sshd of ``tests/remote`` (a closed port, a client key it does not
accept, a daemon that knows no host key) and the private Docker engine (a container that does
not exist, one without python3)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from remote import infra
from remote.conftest import no_python_container  # noqa: F401 - fixture

from .conftest import (
    HomeDaemon,
    leftovers,
    processes_of,
    start_home_daemon,
    stop_home_daemon,
    write,
)
from .terminal import error_lines

FAST = 10.0  # seconds: a refusal comes from the first attempt, far below the 90 s deadline
DATA_KINDS = ("sessions", "archives", "caches", "staging")


@pytest.fixture(scope="module")
def daemons(sshd):
    """Two daemons: ``known`` (its ssh directory knows the server's key; alias ``testhost``
    logs in, alias ``wrongkey`` offers a key the server does not accept) and ``unknown`` (its
    known_hosts is empty)."""
    directory = sshd.client_files(f"client-refusals-{os.getpid()}")
    stranger = os.path.join(directory.directory, "stranger_ed25519")
    infra.generate_key(stranger, "not authorized")
    with open(os.path.join(directory.directory, "config"), "a") as handle:
        handle.write(f"Host wrongkey\n  HostName 127.0.0.1\n  Port {sshd.port}\n"
                     f"  User {sshd.user}\n  IdentityFile {stranger}\n  IdentitiesOnly yes\n")
    empty = sshd.client_files(f"client-refusals-unknown-{os.getpid()}", known_hosts="")
    started = [start_home_daemon(directory.directory), start_home_daemon(empty.directory)]
    try:
        yield {"known": started[0][0], "unknown": started[1][0]}
    finally:
        for handle, base in started:
            stop_home_daemon(handle, base)


def cli(daemon: HomeDaemon, *args: str, environment: dict | None = None):
    return subprocess.run([sys.executable, "-m", "mutagen_actors.cli", *args],
                          env={**daemon.env, **(environment or {})}, capture_output=True,
                          text=True, timeout=150)


def data_left(daemon: HomeDaemon) -> dict:
    """What the data directory holds for sessions: kind -> names (empty kinds left out)."""
    found = {}
    for kind in DATA_KINDS:
        try:
            names = sorted(os.listdir(os.path.join(daemon.data_dir, kind)))
        except FileNotFoundError:
            continue
        if names:
            found[kind] = names
    return found


def refuse(daemon: HomeDaemon, local_root: str, remote: str, environment: dict | None = None,
           remote_side: str = "beta"):
    """Run ``sync create`` between a local root holding a few files (its scan runs meanwhile)
    and ``remote`` (on ``remote_side``); check it failed with one error line and left nothing
    behind; return that line and how long the create took."""
    for index in range(20):
        write(local_root, f"d/f{index}.txt", f"content {index}")
    roots = [remote, local_root] if remote_side == "alpha" else [local_root, remote]
    before = set(processes_of(daemon.data_dir))
    started = time.monotonic()
    result = cli(daemon, "sync", "create", *roots, environment=environment)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    listed = cli(daemon, "sync", "list")
    assert listed.returncode == 0 and "sync_" not in listed.stdout, listed.stdout
    assert data_left(daemon) == {}
    assert daemon.status()["sessions"] == []
    assert set(processes_of(daemon.data_dir)) <= before, "an actor process was left running"
    assert not leftovers(local_root)
    return errors[0], elapsed


@pytest.mark.parametrize("case", ["closed port", "key not accepted", "unknown host key"])
def test_an_ssh_remote_that_cannot_be_used_refuses_create_at_once(daemons, sshd, local_root,
                                                                  case):
    if case == "closed port":
        port = infra.free_port()
        error, elapsed = refuse(daemons["known"], local_root, f"127.0.0.1:{port}:project")
        assert f"beta: unable to connect to 127.0.0.1:{port}: connection refused" in error
    elif case == "key not accepted":
        error, elapsed = refuse(daemons["known"], local_root, "wrongkey:project")
        assert "beta: unable to authenticate to wrongkey" in error, error
        assert "is the key in the ssh-agent or in the ssh config?" in error, error
    else:
        error, elapsed = refuse(daemons["unknown"], local_root, "testhost:project")
        assert f"beta: testhost: host key for [127.0.0.1]:{sshd.port} is not known" in error, error
    assert elapsed < FAST, elapsed


@pytest.mark.parametrize("case", ["no such container", "no python3"])
def test_a_docker_remote_that_cannot_be_used_refuses_create_at_once(daemons, dockerd,
                                                                    no_python_container,
                                                                    local_root, case):
    container = "no-such-container" if case == "no such container" else no_python_container
    error, elapsed = refuse(daemons["known"], local_root, f"docker://{container}/project",
                            environment=dict(dockerd.environment))
    if case == "no such container":
        assert "beta: " in error and "No such container: no-such-container" in error, error
    else:
        assert f"beta: docker://{container} has no python3: the agent needs python3 >= " \
               f"3.10" in error, error
    assert elapsed < FAST, elapsed


def test_the_side_is_named_when_alpha_is_the_remote(daemons, local_root):
    port = infra.free_port()
    error, elapsed = refuse(daemons["known"], local_root, f"127.0.0.1:{port}:project",
                            remote_side="alpha")
    assert f"alpha: unable to connect to 127.0.0.1:{port}: connection refused" in error, error
    assert elapsed < FAST, elapsed
