"""A real daemon with a private data directory (the foundation's helper) and a private HOME, so
the CLI never reads the user's ``~/.mutagen-actors.yml``. Teardown kills every process of that
data directory by pid."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile

import pytest

from foundation.conftest import Daemon, processes_of, wait_until


class SyncDaemon(Daemon):
    home: str = ""

    @property
    def env(self) -> dict:
        return {**super().env, "HOME": self.home, "MUTAGEN_ACTORS_LOG_LEVEL": "info"}

    def sync(self, *args: str, timeout: float = 120.0, check: bool = True):
        return self.cli("sync", *args, timeout=timeout, check=check)

    def sessions(self, *args: str) -> list[dict]:
        return json.loads(self.sync("list", "--json", *args).stdout)

    def wait_session(self, predicate, timeout: float = 30.0, what: str = "session state") -> dict:
        def check():
            sessions = self.sessions()
            return next((s for s in sessions if predicate(s)), None)

        return wait_until(check, timeout, interval=0.1, what=what)


@pytest.fixture
def sync_daemon():
    root = tempfile.mkdtemp(prefix="ma-", dir="/tmp")  # short: unix socket paths
    handle = SyncDaemon(os.path.join(root, "data"))
    handle.home = os.path.join(root, "home")
    os.mkdir(handle.home)
    yield handle
    for pid in processes_of(handle.data_dir):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    wait_until(lambda: not processes_of(handle.data_dir), 10, what="test processes to die")
    shutil.rmtree(root, ignore_errors=True)
