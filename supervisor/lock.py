"""The daemon lock: one daemon per data directory.

``fcntl.flock`` on ``daemon/daemon.lock``: the kernel releases it when the holder dies, so a lock
file left by a killed daemon is never stale. The holder writes its pid into the file (for
messages only; the lock itself is the truth). The descriptor is close-on-exec, so the fork
server and the actors never hold it.
"""

from __future__ import annotations

import fcntl
import os


class LockHeld(Exception):
    """Another live process holds the lock; ``pid`` is what it wrote (0 if unknown)."""

    def __init__(self, pid: int):
        super().__init__(f"another daemon is already running (pid {pid or 'unknown'})")
        self.pid = pid


class DaemonLock:
    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid = int(os.pread(fd, 32, 0).decode().strip() or 0)
            except ValueError:
                pid = 0
            os.close(fd)
            raise LockHeld(pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder(path: str) -> int | None:
    """The pid of the live daemon holding the lock at ``path``, or None if nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return int(os.pread(fd, 32, 0).decode().strip() or 0)
            except ValueError:
                return 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
