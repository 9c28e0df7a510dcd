"""Fixtures for remote sync sessions: the real servers of ``tests/remote`` (private sshd,
private dockerd, bare-python containers) and daemons whose home has an ssh directory for them.

``remote_sync`` is one daemon for the module whose ``~/.ssh`` is the private sshd's client
directory (alias ``testhost``); Docker URLs carry the private engine's ``DOCKER_HOST`` as their
captured environment, as ``sync create`` captures it from a user's shell."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import tempfile
from dataclasses import dataclass

import pytest

from foundation.conftest import Daemon, processes_of, wait_until  # noqa: F401
from remote.conftest import (  # noqa: F401 - fixtures reused
    cache_directory,
    container_sshd,
    dockerd,
    python_container,
    python_image,
    sshd,
)
from syncsession.conftest import Sync, leftovers, tree, wait_same, write  # noqa: F401

from mutagen_actors.wire.messages import sync as sm


@dataclass
class HomeDaemon(Daemon):
    """A daemon with its own ``HOME`` (so its ``~/.ssh`` is a test directory)."""

    home: str = ""

    @property
    def env(self) -> dict:
        return {**super().env, "HOME": self.home}


class RemoteSync(Sync):
    def create_urls(self, alpha: sm.EndpointUrl, beta: sm.EndpointUrl, *, paused=False,
                    timeout: float = 120.0, **configuration) -> str:
        endpoint = {}
        for key in list(configuration):
            if key in sm.EndpointConfiguration.__struct_fields__:
                endpoint[key] = configuration.pop(key)
        config = sm.SyncConfiguration(endpoint=sm.EndpointConfiguration(**endpoint),
                                      **configuration)
        reply = self.request(sm.SyncCreate(alpha, beta, "", {}, paused, config), timeout)
        return reply.identifier


def start_home_daemon(ssh_directory: str | None) -> tuple[HomeDaemon, str]:
    base = tempfile.mkdtemp(prefix="mr-", dir="/tmp")
    home = os.path.join(base, "home")
    os.makedirs(home)
    if ssh_directory:
        os.symlink(ssh_directory, os.path.join(home, ".ssh"))
    handle = HomeDaemon(os.path.join(base, "data"), home=home)
    handle.start()
    return handle, base


def stop_home_daemon(handle: HomeDaemon, base: str) -> None:
    for pid in processes_of(handle.data_dir):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    wait_until(lambda: not processes_of(handle.data_dir), 10, what="test processes to die")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def remote_sync(sshd):  # noqa: F811
    handle, base = start_home_daemon(sshd.client.directory)
    yield RemoteSync(handle)
    stop_home_daemon(handle, base)


@pytest.fixture
def local_root():
    base = tempfile.mkdtemp(prefix="mr-root-")
    yield os.path.join(base, "local")
    shutil.rmtree(base, ignore_errors=True)


def ssh_url(path: str) -> sm.EndpointUrl:
    return sm.EndpointUrl(protocol="ssh", host="testhost", path=path)


def docker_url(engine, container: str, path: str, user: str = "") -> sm.EndpointUrl:
    return sm.EndpointUrl(protocol="docker", user=user, host=container, path=path,
                          environment=dict(engine.environment))


def as_login_user(home: str, path: str) -> None:
    """Give ``path`` and its parents below ``home`` to the owner of ``home`` (the test writes as
    root into the SSH user's home; the agent there runs as that user)."""
    entry = os.stat(home)
    while path.startswith(home.rstrip("/") + "/"):
        os.chown(path, entry.st_uid, entry.st_gid)
        path = os.path.dirname(path)


def write_as(home: str, root: str, relative: str, content) -> str:
    path = write(root, relative, content)
    as_login_user(home, path)
    return path


def login_uid(name: str) -> int:
    return pwd.getpwnam(name).pw_uid
