"""Session-scoped real servers for the remote tests (see ``infra``): they fail loudly with the
reason when something cannot start; nothing here skips."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from mutagen_actors.supervisor.urls import Url

from . import infra


@pytest.fixture(scope="session")
def sshd():
    root = tempfile.mkdtemp(prefix="h9-sshd-", dir="/tmp")
    server = infra.PrivateSshd(root).start()
    # a fresh remote: the first connect must install the agent
    shutil.rmtree(os.path.join(server.home, ".mutagen-actors"), ignore_errors=True)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dockerd():
    root = tempfile.mkdtemp(prefix="h9-dk-", dir="/tmp")
    engine = infra.PrivateDockerd(root).start()
    try:
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def python_image(dockerd):
    return infra.bare_python_image(dockerd)


@pytest.fixture(scope="session")
def python_container(dockerd, python_image):
    """A running container of the bare-python image, no network."""
    return dockerd.run_container(python_image)


@pytest.fixture(scope="session")
def no_python_container(dockerd, python_image):
    """A running container whose python3 was removed."""
    name = dockerd.run_container(python_image)
    dockerd.docker("exec", name, "sh", "-c", "rm -f /usr/bin/python3*")
    return name


@pytest.fixture(scope="session")
def cache_directory():
    path = tempfile.mkdtemp(prefix="h9-cache-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def docker_url(dockerd):
    def make(container: str, user: str = "") -> Url:
        return Url("docker", user, container, 0, "/root", dict(dockerd.environment))
    return make


@pytest.fixture
def ssh_url(sshd):
    return Url("ssh", "", sshd.client.alias, 0, "project")


@pytest.fixture(scope="session")
def container_sshd(dockerd, python_image):
    root = tempfile.mkdtemp(prefix="h9-csshd-", dir="/tmp")
    try:
        yield infra.start_container_sshd(dockerd, python_image, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
