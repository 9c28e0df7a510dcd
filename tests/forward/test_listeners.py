"""Listeners on real sockets: unix overwrite modes, permissions and ownership, bad input that
must fail with one clear line and leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import subprocess
import sys

import pytest

from mutagen_actors.actors.forward.dialers import DialError, make_dialer
from mutagen_actors.actors.forward.endpoints import (
    ForwardingError, OverwriteMode, SocketOptions, parse_endpoint)
from mutagen_actors.actors.forward.listeners import open_listener


def _listen(text: str, options: SocketOptions | None = None, **kwargs):
    async def go():
        listener = await open_listener(parse_endpoint(text), options, **kwargs)
        return listener.describe(), listener

    return asyncio.run(go())


def _close(listener) -> None:
    async def go():
        listener.close()

    asyncio.run(go())


def _read(path: str) -> str:
    with open(path) as stream:
        return stream.read()


def _mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_unix_listener_default_mode_is_0600_and_close_removes_it(short_dir):
    path = os.path.join(short_dir, "app.sock")
    described, listener = _listen(f"unix:{path}")
    assert described == f"unix:{path}"
    assert stat.S_ISSOCK(os.lstat(path).st_mode) and _mode(path) == 0o600
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(path)
    _close(listener)
    assert not os.path.exists(path)


@pytest.mark.parametrize("mode", [0o660, 0o666, 0o400, 0o700])
def test_unix_listener_applies_the_requested_mode(short_dir, mode):
    path = os.path.join(short_dir, "app.sock")
    _, listener = _listen(f"unix:{path}", SocketOptions(permission_mode=mode))
    try:
        assert _mode(path) == mode
    finally:
        _close(listener)


def test_unix_listener_applies_owner_and_group(short_dir):
    if os.getuid() != 0:
        own_uid, own_gid = os.getuid(), os.getgid()
        owner, group, expected = f"id:{own_uid}", str(own_gid), (own_uid, own_gid)
    else:
        owner, group, expected = "id:1000", "adm", (1000, 4)
    path = os.path.join(short_dir, "app.sock")
    _, listener = _listen(f"unix:{path}", SocketOptions(owner=owner, group=group))
    try:
        info = os.lstat(path)
        assert (info.st_uid, info.st_gid) == expected
    finally:
        _close(listener)


def test_leave_mode_refuses_an_existing_path_and_leaves_it_alone(short_dir):
    path = os.path.join(short_dir, "app.sock")
    with open(path, "w") as stream:
        stream.write("not mine")
    with pytest.raises(ForwardingError) as error:
        _listen(f"unix:{path}")
    assert str(error.value) == (
        f"cannot listen on unix:{path}: {path} already exists (socket overwrite mode is "
        "'leave'; use 'overwrite' to replace it)")
    assert _read(path) == "not mine"


def test_overwrite_mode_replaces_an_existing_socket(short_dir):
    path = os.path.join(short_dir, "app.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    with socket.socket(socket.AF_UNIX) as client, pytest.raises(ConnectionRefusedError):
        client.connect(path)  # dead before
    _, listener = _listen(f"unix:{path}", SocketOptions(OverwriteMode.OVERWRITE))
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)  # live now: it is ours
        assert _mode(path) == 0o600
    finally:
        _close(listener)


def test_overwrite_mode_never_removes_a_directory(short_dir):
    path = os.path.join(short_dir, "dir")
    os.mkdir(path)
    with pytest.raises(ForwardingError, match=f"{path} is a directory"):
        _listen(f"unix:{path}", SocketOptions(OverwriteMode.OVERWRITE))
    assert os.path.isdir(path)


def test_a_restarted_forwarder_reclaims_only_a_dead_socket(short_dir):
    path = os.path.join(short_dir, "app.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()  # what a killed incarnation leaves behind
    _, listener = _listen(f"unix:{path}", reclaim_stale=True)
    try:
        # and a live one (somebody listens) is never taken over, even by a restart
        with pytest.raises(ForwardingError, match="already exists"):
            _listen(f"unix:{path}", reclaim_stale=True)
    finally:
        _close(listener)


def test_close_does_not_remove_a_file_that_replaced_our_socket(short_dir):
    path = os.path.join(short_dir, "app.sock")
    _, listener = _listen(f"unix:{path}")
    os.unlink(path)
    with open(path, "w") as stream:
        stream.write("someone else's")
    _close(listener)
    assert _read(path) == "someone else's"


@pytest.mark.parametrize("options,message", [
    (SocketOptions(owner="no-such-user-xyz"), "unknown socket owner 'no-such-user-xyz'"),
    (SocketOptions(group="no-such-group-xyz"), "unknown socket group 'no-such-group-xyz'"),
])
def test_unknown_owner_or_group_fails_before_anything_is_created(short_dir, options, message):
    path = os.path.join(short_dir, "app.sock")
    with pytest.raises(ForwardingError, match=message):
        _listen(f"unix:{path}", options)
    assert os.listdir(short_dir) == []


_AFTER_BIND = """
import asyncio, sys
from mutagen_actors.actors.forward.endpoints import ForwardingError, SocketOptions, parse_endpoint
from mutagen_actors.actors.forward.listeners import open_listener
try:
    asyncio.run(open_listener(parse_endpoint(sys.argv[1]), SocketOptions(owner=sys.argv[2])))
except ForwardingError as error:
    print(error)
"""


def test_failure_after_bind_removes_the_socket_file(short_dir):
    """chown after bind is refused (not root, or root without CAP_CHOWN): the error is clear
    and the socket file that was already bound is gone."""
    path = os.path.join(short_dir, "app.sock")
    command = [sys.executable, "-c", _AFTER_BIND, f"unix:{path}",
               f"id:{os.getuid() + 1}"]
    if os.getuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("root may chown to anyone and setpriv (util-linux) is missing")
        command = [setpriv, "--bounding-set=-chown"] + command
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == f"cannot listen on unix:{path}: permission denied " \
                                    "(Operation not permitted)", result.stderr
    assert os.listdir(short_dir) == []


def test_missing_directory_is_a_clear_error(short_dir):
    path = os.path.join(short_dir, "missing", "app.sock")
    with pytest.raises(ForwardingError, match=f"directory {os.path.dirname(path)} does not exist"):
        _listen(f"unix:{path}")


def test_tcp_address_in_use_is_a_clear_error():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(ForwardingError) as error:
            _listen(f"tcp:127.0.0.1:{port}")
        assert str(error.value) == f"cannot listen on tcp:127.0.0.1:{port}: address already in use"
    finally:
        holder.close()


def test_tcp_port_zero_listens_on_a_real_port_and_reports_it():
    described, listener = _listen("tcp4:127.0.0.1:0")
    try:
        port = int(described.rsplit(":", 1)[1])
        assert described == f"tcp4:127.0.0.1:{port}" and port > 0
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        _close(listener)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_tcp6_listener_on_ipv6_loopback():
    assert _ipv6_loopback(), "this test needs an IPv6 loopback (::1)"
    described, listener = _listen("tcp6:[::1]:0")
    try:
        assert described.startswith("tcp6:[::1]:")
        port = int(described.rsplit(":", 1)[1])
        socket.create_connection(("::1", port), timeout=5).close()
    finally:
        _close(listener)


def test_localhost_listener_resolves_to_loopback():
    described, listener = _listen("tcp:localhost:0")
    try:
        assert described.startswith("tcp:127.0.0.1:")
    finally:
        _close(listener)


def test_unresolvable_host_is_a_clear_error():
    with pytest.raises(ForwardingError, match="cannot resolve 'no-such-host.invalid'"):
        _listen("tcp:no-such-host.invalid:0")


@pytest.mark.parametrize("destination,message", [
    ("unix:/tmp/fwd-no-such-dir-xyz/app.sock", "cannot connect to unix:/tmp/fwd-no-such-dir-xyz"
                                               "/app.sock: no such file or directory"),
    ("tcp:no-such-host.invalid:80", "cannot resolve 'no-such-host.invalid'"),
])
def test_dial_failures_are_one_clear_line(destination, message):
    async def go():
        await make_dialer(parse_endpoint(destination, listening=False), timeout=5)()

    with pytest.raises(DialError) as error:
        asyncio.run(go())
    assert message in str(error.value)
