"""Unix-socket options of a remote source (reverse forwarding) through the real CLI and daemon:
on the private sshd's host (our agent listens there as the sshd fixture's login user; sshd's
streamlocal-forward could not carry the options) and in the container (the agent runs as root).
Permission mode, owner and group end up on the socket file; an option the remote cannot honour
and an existing file in overwrite mode ``leave`` are clear errors at create, with no session."""

from __future__ import annotations

import grp
import os
import pwd
import stat

import pytest

from forward.servers import EchoServer
from forwardsession.conftest import echo_once, free_port
from remote import infra

LOGIN = infra.own_login_user()


def _path(tag: str) -> str:
    return f"/tmp/ma-opt-{tag}-{os.getpid()}-{free_port()}.sock"


def _owned_by_login(path: str, kind: str = "file") -> None:
    """A file (or socket-free path) at ``path`` owned by the sshd's login user."""
    entry = pwd.getpwnam(LOGIN)
    with open(path, "w") as handle:
        handle.write(kind)
    os.chown(path, entry.pw_uid, entry.pw_gid)


@pytest.fixture
def echo():
    server = EchoServer("tcp:127.0.0.1:0")
    yield server
    server.close()


@pytest.mark.parametrize("flags, mode, owner, group", [
    ((), 0o600, LOGIN, LOGIN),
    (("--socket-permission-mode", "0660", "--socket-owner", LOGIN, "--socket-group", LOGIN),
     0o660, LOGIN, LOGIN),
    (("--socket-permission-mode-source", "0644", "--socket-group-source", "id:LOGIN_GID"),
     0o644, LOGIN, LOGIN),
])
def test_ssh_reverse_unix_socket_gets_the_mode_owner_and_group(ssh_daemon, echo, flags, mode,
                                                               owner, group):
    path = _path("ssh")
    # the login user exists once the sshd fixture ran (one per test process)
    flags = tuple(f"id:{grp.getgrnam(LOGIN).gr_gid}" if flag == "id:LOGIN_GID" else flag
                  for flag in flags)
    try:
        ssh_daemon.create(f"testhost:unix:{path}", echo.endpoint, "-n", "opts", *flags)
        info = os.lstat(path)
        assert stat.S_ISSOCK(info.st_mode)
        assert (stat.S_IMODE(info.st_mode), pwd.getpwuid(info.st_uid).pw_name,
                grp.getgrgid(info.st_gid).gr_name) == (mode, owner, group)
        assert echo_once(f"unix:{path}", b"through the agent's listener on the ssh host")
        state = ssh_daemon.session("opts")
        assert state["status"] == "forwarding" and state["source"]["connected"]
        ssh_daemon.forward("terminate", "opts")
        assert not os.path.lexists(path)  # the agent removed the socket it made
    finally:
        if os.path.lexists(path):
            os.unlink(path)


def test_ssh_socket_options_the_remote_cannot_honour_are_clear_errors(ssh_daemon, echo):
    path = _path("ssh-bad")
    cases = [
        (("--socket-owner", "root"), "permission denied"),  # the login user cannot chown
        (("--socket-owner", "no-such-user-h7"), "unknown socket owner 'no-such-user-h7'"),
        (("--socket-group", "no-such-group-h7"), "unknown socket group 'no-such-group-h7'"),
    ]
    try:
        for flags, expected in cases:
            result = ssh_daemon.forward("create", f"testhost:unix:{path}", echo.endpoint, *flags,
                                        check=False)
            assert result.returncode != 0, result.stdout
            assert expected in result.stderr and "on testhost" in result.stderr, result.stderr
            assert not os.path.lexists(path)  # nothing half made is left behind
        assert ssh_daemon.sessions() == []
    finally:
        if os.path.lexists(path):
            os.unlink(path)


def test_ssh_existing_file_leave_is_an_error_overwrite_replaces_it(ssh_daemon, echo):
    path = _path("ssh-exists")
    _owned_by_login(path)
    try:
        result = ssh_daemon.forward("create", f"testhost:unix:{path}", echo.endpoint, check=False)
        assert result.returncode != 0
        assert f"{path} already exists (socket overwrite mode is 'leave'" in result.stderr, \
            result.stderr
        with open(path) as handle:
            assert handle.read() == "file"  # left alone
        assert ssh_daemon.sessions() == []
        ssh_daemon.create(f"testhost:unix:{path}", echo.endpoint, "--socket-overwrite-mode",
                          "overwrite")
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        assert echo_once(f"unix:{path}", b"replaced")
    finally:
        if os.path.lexists(path):
            os.unlink(path)


def _stat_in(dockerd, container: str, path: str) -> str:
    done = dockerd.docker("exec", container, "stat", "-c", "%F %a %U %G", path, check=False)
    return done.stdout.decode().strip()


@pytest.mark.parametrize("flags, expected", [
    ((), "socket 600 root root"),
    (("--socket-permission-mode", "0660", "--socket-owner", "nobody", "--socket-group",
      "nogroup"), "socket 660 nobody nogroup"),
    (("--socket-permission-mode-source", "0606", "--socket-owner-source", "id:1",
      "--socket-group-source", "65534"), "socket 606 daemon nogroup"),
])
def test_docker_reverse_unix_socket_gets_the_mode_owner_and_group(docker_daemon, dockerd,
                                                                  python_container, echo,
                                                                  flags, expected):
    path = _path("dk")
    docker_daemon.create(f"docker://{python_container}:unix:{path}", echo.endpoint, "-n", "dk",
                         *flags)
    assert _stat_in(dockerd, python_container, path) == expected
    probe = ("import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
             "s.sendall(b'in the container');s.shutdown(socket.SHUT_WR);"
             "print(s.recv(100).decode())")
    done = dockerd.docker("exec", python_container, "python3", "-c", probe, path)
    assert done.stdout.decode().strip() == "in the container"
    docker_daemon.forward("terminate", "dk")
    assert _stat_in(dockerd, python_container, path) == ""  # removed


def test_docker_existing_file_leave_vs_overwrite_and_unknown_owner(docker_daemon, dockerd,
                                                                   python_container, echo):
    path = _path("dk-exists")
    dockerd.docker("exec", python_container, "sh", "-c", f"echo file > {path}")
    remote = f"docker://{python_container}:unix:{path}"
    result = docker_daemon.forward("create", remote, echo.endpoint, check=False)
    assert result.returncode != 0
    assert f"{path} already exists (socket overwrite mode is 'leave'" in result.stderr, \
        result.stderr
    assert f"in docker://{python_container}" in result.stderr, result.stderr
    assert _stat_in(dockerd, python_container, path).startswith("regular file")
    result = docker_daemon.forward("create", remote, echo.endpoint, "--socket-overwrite-mode",
                                   "overwrite", "--socket-owner", "no-such-user-h7", check=False)
    assert result.returncode != 0 and "unknown socket owner 'no-such-user-h7'" in result.stderr, \
        result.stderr
    assert docker_daemon.sessions() == []
    docker_daemon.create(remote, echo.endpoint, "--socket-overwrite-mode", "overwrite")
    assert _stat_in(dockerd, python_container, path).startswith("socket 600")
