"""Fixtures for forwarding to SSH hosts and Docker containers: the real private sshd, dockerd and
bare-python image of ``tests/remote`` (started by the suite, stopped by pid), and the real
daemon of ``tests/forwardsession`` whose HOME carries an ``~/.ssh`` for the private sshd (alias
``testhost``), so the forwarder connects the way a user's daemon does."""

from __future__ import annotations

import os
import shutil

import pytest

from forwardsession.conftest import forward_daemon  # noqa: F401 - fixture
from remote.conftest import (  # noqa: F401 - fixtures
    cache_directory,
    dockerd,
    python_container,
    python_image,
    sshd,
)


@pytest.fixture
def ssh_daemon(forward_daemon, sshd):  # noqa: F811 - fixture use
    """A daemon whose ``~/.ssh`` reaches the private sshd as ``testhost``."""
    target = os.path.join(forward_daemon.home, ".ssh")
    os.makedirs(target, mode=0o700)
    for name in ("config", "known_hosts"):
        shutil.copy(os.path.join(sshd.client.directory, name), os.path.join(target, name))
    return forward_daemon


@pytest.fixture
def docker_daemon(forward_daemon, dockerd, monkeypatch):  # noqa: F811 - fixture use
    """A daemon whose CLI runs with the private dockerd's ``DOCKER_HOST`` (captured into the
    session's Docker URLs, as for a user's environment)."""
    for name, value in dockerd.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    return forward_daemon
