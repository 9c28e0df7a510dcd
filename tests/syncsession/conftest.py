"""Fixtures for the sync session tests: a real daemon with a private data directory (the
foundation's ``daemon`` fixture) and a ``Sync`` helper that drives it with the sync messages over
the control socket, plus filesystem helpers that wait on conditions with deadlines."""

from __future__ import annotations

import os
import tempfile
import shutil

import pytest

from foundation.conftest import Daemon, daemon, processes_of, wait_until  # noqa: F401

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

    def wait_status(self, identifier: str, *statuses: str, timeout: float = 30.0):
        return wait_until(lambda: (s := self.state(identifier)).status in statuses and s,
                          timeout, interval=0.05, what=f"status in {statuses}")


@pytest.fixture
def sync(daemon):  # noqa: F811 - the foundation fixture
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


def tree(root: str) -> dict:
    """What a user sees below ``root``: relative path -> ("file", content, executable) /
    ("dir",) / ("link", target). Temporary names are included, so tests can see leftovers."""
    found = {}
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            if os.path.islink(path):
                found[relative] = ("link", os.readlink(path))
                if name in names:
                    names.remove(name)
            elif os.path.isdir(path):
                found[relative] = ("dir",)
            else:
                with open(path, "rb") as stream:
                    found[relative] = ("file", stream.read(), os.access(path, os.X_OK))
    return found


def wait_same(alpha: str, beta: str, timeout: float = 30.0) -> dict:
    """Wait until both roots hold the same tree; returns it."""
    return wait_until(lambda: (a := tree(alpha)) == tree(beta) and (a or {"": 1}), timeout,
                      interval=0.02, what="both roots to be equal")
