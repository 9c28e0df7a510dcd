"""The data directory and its layout.

``~/.mutagen-actors`` or ``$MUTAGEN_ACTORS_DATA_DIRECTORY`` (must be absolute)::

    <data dir>/                 0700, created on first use
      daemon/                   0700
        daemon.lock             fcntl lock held by the running daemon (its pid inside)
        daemon.sock             control socket (unix stream), 0600
        daemon.log              JSON-lines log of the daemon and all its actors
        daemon.out              stdout/stderr of a daemon started in the background
        mailboxes/              0700; one ZeroMQ ipc socket (0600) per running actor
      sessions/                 0700; one persisted record per session (<id>.json)

Failure rules: a relative override, a directory owned by another user, or a path too long for
unix sockets raise ``DataDirectoryError`` with a one-line reason. An existing directory with
looser permissions is tightened to 0700 (it is ours, and private).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENVIRONMENT_VARIABLE = "MUTAGEN_ACTORS_DATA_DIRECTORY"
UNIX_SOCKET_PATH_LIMIT = 107  # sun_path is 108 bytes on Linux, including the terminating NUL
MAILBOX_NAME_LENGTH = len("0123456789abcdef.ipc")


class DataDirectoryError(Exception):
    pass


@dataclass(frozen=True)
class Paths:
    root: str

    @property
    def daemon(self) -> str:
        return os.path.join(self.root, "daemon")

    @property
    def lock(self) -> str:
        return os.path.join(self.daemon, "daemon.lock")

    @property
    def socket(self) -> str:
        return os.path.join(self.daemon, "daemon.sock")

    @property
    def log(self) -> str:
        return os.path.join(self.daemon, "daemon.log")

    @property
    def output(self) -> str:
        return os.path.join(self.daemon, "daemon.out")

    @property
    def mailboxes(self) -> str:
        return os.path.join(self.daemon, "mailboxes")

    @property
    def sessions(self) -> str:
        return os.path.join(self.root, "sessions")

    def mailbox(self, token: str) -> str:
        return "ipc://" + os.path.join(self.mailboxes, f"{token}.ipc")


def resolve(environ=os.environ) -> Paths:
    """Where the data directory is (nothing is created)."""
    override = environ.get(ENVIRONMENT_VARIABLE)
    if override:
        if not os.path.isabs(override):
            raise DataDirectoryError(
                f"{ENVIRONMENT_VARIABLE} must be an absolute path (got {override!r})")
        return Paths(os.path.normpath(override))
    return Paths(os.path.join(os.path.expanduser("~"), ".mutagen-actors"))


def _private_directory(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.stat(path)
    if info.st_uid != os.getuid():
        raise DataDirectoryError(f"{path} belongs to another user (uid {info.st_uid})")
    if info.st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)


def prepare(paths: Paths) -> Paths:
    """Create the directory tree with private permissions; check socket path lengths."""
    longest = max(len(paths.socket) + len(".999999999.tmp"),
                  len(os.path.join(paths.mailboxes, "x")) - 1 + MAILBOX_NAME_LENGTH)
    if longest > UNIX_SOCKET_PATH_LIMIT:
        raise DataDirectoryError(
            f"data directory path {paths.root!r} is too long for unix sockets "
            f"(needs <= {UNIX_SOCKET_PATH_LIMIT - longest + len(paths.root)} characters); "
            f"set {ENVIRONMENT_VARIABLE} to a shorter path")
    for path in (paths.root, paths.daemon, paths.mailboxes, paths.sessions):
        _private_directory(path)
    return paths
