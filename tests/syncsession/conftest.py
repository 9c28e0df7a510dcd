"""Fixtures for the sync session tests: a real daemon with a private data directory (the
foundation's ``daemon`` fixture) and a ``Sync`` helper that drives it with the sync messages over
the control socket, plus filesystem helpers that wait on conditions with deadlines."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

import pytest

from foundation.conftest import Daemon, daemon, processes_of, wait_until  # noqa: F401

from mutagen_actors.actors.syncsession.stager import TEST_RATE_VARIABLE
from mutagen_actors.wire.errors import RemoteError
from mutagen_actors.wire.messages import control
from mutagen_actors.wire.messages import sync as sm
from mutagen_actors.wire.stream import StreamClient
from mutagen_actors.wire.version import VERSION


class Sync:
    """Talks to one daemon with the sync messages."""

    def __init__(self, handle: Daemon):
        self.daemon = handle

    def request(self, body, timeout: float = 60.0):
        client = StreamClient(self.daemon.socket)
        client.connect(5.0)
        try:
            client.request(control.Hello(VERSION), 5.0)
            return client.request(body, timeout)
        finally:
            client.close()

    def create(self, alpha: str, beta: str, *, name: str = "", labels=None, paused=False,
               **configuration) -> str:
        endpoint = {}
        for key in list(configuration):
            if key in sm.EndpointConfiguration.__struct_fields__:
                endpoint[key] = configuration.pop(key)
        config = sm.SyncConfiguration(endpoint=sm.EndpointConfiguration(**endpoint),
                                      **configuration)
        reply = self.request(sm.SyncCreate(sm.EndpointUrl(path=alpha), sm.EndpointUrl(path=beta),
                                           name, labels or {}, paused, config))
        return reply.identifier

    def list(self, *specifications: str) -> list:
        return self.request(sm.SyncList(sm.Selection(list(specifications)))).sessions

    def state(self, identifier: str):
        return self.list(identifier)[0]

    def flush(self, identifier: str, skip_wait: bool = False, timeout: float = 120.0):
        return self.request(sm.SyncFlush(sm.Selection([identifier]), skip_wait), timeout)

    def command(self, kind, identifier: str):
        return self.request(kind(sm.Selection([identifier])))

    def refused(self, body) -> str:
        try:
            self.request(body)
        except RemoteError as error:
            return error.message
        raise AssertionError(f"{type(body).__name__} was accepted")

    def actor_pid(self, identifier: str, actor: str) -> int:
        status = self.request(control.GetDaemonStatus())
        session = next(s for s in status.sessions if s.id == identifier)
        return next(a.pid for a in session.actors if a.id == actor)

    def wait_status(self, identifier: str, *statuses: str, timeout: float = 30.0):
        seen = []

        def reached():
            state = self.state(identifier)
            seen.append((state.status, state.last_error))
            return state if state.status in statuses else None

        try:
            return wait_until(reached, timeout, interval=0.05, what=f"status in {statuses}")
        except AssertionError as error:
            raise AssertionError(f"{error}; last seen: {seen[-1]}") from None


@pytest.fixture(scope="module")
def shared_sync():
    """One daemon for a whole module (sessions are cheap; daemons take a second to start)."""
    yield from module_daemon()


def module_daemon(extra: dict | None = None):
    """``shared_sync``'s body: a daemon (with ``extra`` environment) for a module's fixture."""
    base = tempfile.mkdtemp(prefix="ma-", dir="/tmp")
    handle = Daemon(os.path.join(base, "data"), extra=dict(extra or {}))
    handle.start()
    yield Sync(handle)
    for pid in processes_of(handle.data_dir):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    wait_until(lambda: not processes_of(handle.data_dir), 10, what="test processes to die")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def sync(daemon):  # noqa: F811 - the foundation fixture
    daemon.start()
    return Sync(daemon)


MIB = 1 << 20
THROTTLED_RATE = 16 * MIB  # bytes per second of staging in the ``throttled`` daemon


@pytest.fixture
def throttled(daemon, monkeypatch):  # noqa: F811 - the foundation fixture
    """A daemon whose staging is capped at ``THROTTLED_RATE`` (``stager.TEST_RATE_VARIABLE``):
    a transfer of a few tens of MiB lasts seconds, long enough to act during it."""
    monkeypatch.setenv(TEST_RATE_VARIABLE, str(THROTTLED_RATE))
    daemon.start()
    return Sync(daemon)


@pytest.fixture
def roots():
    base = tempfile.mkdtemp(prefix="ma-roots-")
    alpha, beta = os.path.join(base, "alpha"), os.path.join(base, "beta")
    os.mkdir(alpha)
    os.mkdir(beta)
    yield alpha, beta
    shutil.rmtree(base, ignore_errors=True)


def write(root: str, relative: str, content, mode: int | None = None) -> str:
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as stream:
        stream.write(content.encode() if isinstance(content, str) else content)
    if mode is not None:
        os.chmod(path, mode)
    return path


def leftovers(*roots: str) -> list:
    """Temporary or partial names left anywhere below ``roots``."""
    found = []
    for root in roots:
        for directory, names, files in os.walk(root):
            found += [os.path.join(directory, n) for n in names + files
                      if n.startswith(".mutagen-temporary-") or ".partial-" in n]
    return found


def tree(root: str) -> dict:
    """What a user sees below ``root``: relative path -> ("file", content, executable) /
    ("dir",) / ("link", target). Temporary names are included, so tests can see leftovers."""
    found = {}
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            try:
                found[relative] = _describe(path)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue  # changing under our feet: the caller polls again
            if found[relative][0] == "link" and name in names:
                names.remove(name)
    return found


def _describe(path: str) -> tuple:
    if os.path.islink(path):
        return ("link", os.readlink(path))
    if os.path.isdir(path):
        return ("dir",)
    with open(path, "rb") as stream:
        return ("file", stream.read(), os.access(path, os.X_OK))


def wait_same(alpha: str, beta: str, timeout: float = 30.0) -> dict:
    """Wait until both roots hold the same tree; returns it."""
    return wait_until(lambda: (a := tree(alpha)) == tree(beta) and (a or {"": 1}), timeout,
                      interval=0.02, what="both roots to be equal")
