"""Fixtures for the foundation tests: a private data directory per test, the real CLI in a
subprocess, and a teardown that kills every process of that data directory by pid (even when
the test failed or left the daemon SIGSTOP'd)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import pytest

ENV = "MUTAGEN_ACTORS_DATA_DIRECTORY"


def wait_until(condition, timeout: float, interval: float = 0.01, what: str = "condition"):
    """Poll ``condition`` until it returns a truthy value; fail past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """True if ``pid`` is a live process (zombies count as dead: they have exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            state = stream.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def processes_of(data_dir: str) -> list[int]:
    """Live processes whose environment points at ``data_dir`` (daemon, fork server, resource
    tracker, actors: all inherit the variable)."""
    needle = f"{ENV}={data_dir}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as stream:
                environ = stream.read().split(b"\0")
        except OSError:
            continue
        if needle in environ and alive(int(name)):
            found.append(int(name))
    return found


@dataclass
class Daemon:
    data_dir: str
    extra: dict = field(default_factory=dict)  # more environment for the daemon and its actors

    @property
    def env(self) -> dict:
        return {**os.environ, ENV: self.data_dir, "MUTAGEN_ACTORS_LOG_LEVEL": "debug",
                **self.extra}

    @property
    def socket(self) -> str:
        return os.path.join(self.data_dir, "daemon", "daemon.sock")

    @property
    def log_path(self) -> str:
        return os.path.join(self.data_dir, "daemon", "daemon.log")

    def cli(self, *args: str, timeout: float = 60.0, check: bool = False):
        try:
            result = subprocess.run([sys.executable, "-m", "mutagen_actors.cli", *args],
                                    env=self.env, capture_output=True, text=True,
                                    timeout=timeout)
        except subprocess.TimeoutExpired:
            self.dump_stacks()  # what the daemon was doing meanwhile, into its log
            raise
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def dump_stacks(self, timeout: float = 5.0) -> bool:
        """Ask the running daemon (if any) for its thread and task stacks (SIGUSR1, see
        ``supervisor/diagnostics.py``); True once its log says they are written."""
        try:
            with open(os.path.join(self.data_dir, "daemon", "daemon.lock")) as stream:
                pid = int(stream.read().strip() or 0)
            os.kill(pid, signal.SIGUSR1)
        except (OSError, ValueError):
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path) as stream:
                if '"task stacks logged"' in stream.read():
                    return True
            time.sleep(0.05)
        return False

    def status(self) -> dict:
        result = self.cli("daemon", "status", "--json", check=True)
        return json.loads(result.stdout)

    def start(self) -> int:
        self.cli("daemon", "start", check=True)
        return self.status()["pid"]

    def create_session(self, actors: int, *extra: str) -> dict:
        result = self.cli("daemon", "debug-session", "create", "--actors", str(actors), "--json",
                          *extra, check=True)
        return json.loads(result.stdout)

    def session(self, session_id: str) -> dict:
        return next(s for s in self.status()["sessions"] if s["id"] == session_id)

    def log_lines(self) -> list[dict]:
        with open(self.log_path) as stream:
            return [json.loads(line) for line in stream if line.strip()]

    def wait_log(self, predicate, timeout: float = 5.0, what: str = "log line"):
        return wait_until(lambda: [e for e in self.log_lines() if predicate(e)], timeout,
                          what=what)


@pytest.fixture
def daemon():
    data_dir = tempfile.mkdtemp(prefix="ma-", dir="/tmp")  # short: unix socket paths
    handle = Daemon(os.path.join(data_dir, "data"))
    yield handle
    leftovers = processes_of(handle.data_dir)
    for pid in leftovers:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    wait_until(lambda: not processes_of(handle.data_dir), 10, what="test processes to die")
    shutil.rmtree(data_dir, ignore_errors=True)
