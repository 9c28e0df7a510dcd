"""Nobody else gets in: another local user cannot reach the daemon's control socket, layer by
layer (0700 data directory, 0600 socket, and the daemon's own peer-uid check)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess

import pytest

OTHER_USER = "mutagen-actors-test"

CONNECT = r"""
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("permission denied"); sys.exit(0)
# Connected at the kernel level: send a Hello frame and see whether the daemon answers.
hello = bytes([0x94, 1, 1, 0, 0x92, 0xa5]) + b"Hello" + bytes([0xa5]) + b"0.1.0"
try:
    s.sendall(struct.pack(">I", len(hello)) + hello)
    data = s.recv(4)
except (BrokenPipeError, ConnectionResetError):
    data = b""
print("answered" if data else "closed")
"""


def _other_user() -> str:
    try:
        pwd.getpwnam(OTHER_USER)
    except KeyError:
        if os.getuid() != 0 or not shutil.which("useradd"):
            pytest.fail("this test needs root and useradd to create a second local user")
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        OTHER_USER], check=True, capture_output=True)
    return OTHER_USER


def _as_other(user: str, socket_path: str) -> str:
    if not shutil.which("runuser") or not os.access("/usr/bin/python3", os.X_OK):
        pytest.fail("this test needs runuser and /usr/bin/python3")
    result = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", CONNECT,
                             socket_path], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_second_local_user_cannot_connect(daemon):
    user = _other_user()
    daemon.start()
    parent = os.path.dirname(daemon.data_dir)
    os.chmod(parent, 0o755)  # everything above the data directory is open to the other user
    daemon_dir = os.path.dirname(daemon.socket)

    # 1. The data directory is 0700.
    assert _as_other(user, daemon.socket) == "permission denied"
    # 2. Even with the directories opened up, the socket itself is 0600.
    os.chmod(daemon.data_dir, 0o711)
    os.chmod(daemon_dir, 0o711)
    try:
        assert _as_other(user, daemon.socket) == "permission denied"
        # 3. Even with a world-writable socket, the daemon refuses the other uid.
        os.chmod(daemon.socket, 0o666)
        assert _as_other(user, daemon.socket) == "closed"
    finally:
        os.chmod(daemon.socket, 0o600)
        os.chmod(daemon_dir, 0o700)
        os.chmod(daemon.data_dir, 0o700)
    uid = pwd.getpwnam(user).pw_uid
    refused = daemon.wait_log(lambda e: e["event"] == "refused control connection from another user")
    assert refused[-1]["peer_uid"] == uid
    assert daemon.cli("daemon", "status").returncode == 0
