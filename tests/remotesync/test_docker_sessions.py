"""Sync sessions with a Docker endpoint (a bare-python container on the private dockerd), end to
end through a real daemon; remote to remote (docker <-> ssh) goes through the daemon."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from mutagen_actors.wire.messages import sync as sm

from .conftest import docker_url, leftovers, ssh_url, tree, wait_until, write, write_as

LIST = ("import json,os,sys\n"
        "r=sys.argv[1];f={}\n"
        "for d,ns,fs in os.walk(r):\n"
        " for n in fs:\n"
        "  p=os.path.join(d,n);f[os.path.relpath(p,r)]=open(p,errors='replace').read()\n"
        "print(json.dumps(f))\n")


def container_files(engine, container: str, root: str) -> dict:
    """relative path -> text of every file below ``root`` in the container."""
    result = engine.docker("exec", container, "python3", "-c", LIST, root, check=False,
                           timeout=30)
    if result.returncode != 0:
        return {}
    return json.loads(result.stdout)


def container_write(engine, container: str, path: str, text: str) -> None:
    engine.docker("exec", "-i", container, "sh", "-c",
                  f"mkdir -p \"$(dirname '{path}')\" && cat > '{path}'", input=text.encode())


def local_files(root: str) -> dict:
    return {k: v[1].decode() for k, v in tree(root).items() if v[0] == "file"}


def wait_files(read, expected: dict, what: str, timeout: float = 20.0) -> dict:
    return wait_until(lambda: (found := read()) == expected and (found or {"": ""}), timeout,
                      interval=0.05, what=what)


@pytest.fixture
def container(dockerd, python_image):
    """A fresh container of its own (tests here stop, remove and recreate it)."""
    name = dockerd.run_container(python_image)
    yield name
    dockerd.docker("rm", "-f", name, check=False)


def test_local_and_docker_two_way_safe_with_watching(remote_sync, dockerd, python_container,
                                                     local_root):
    root = "/root/app-safe"
    write(local_root, "a.txt", "alpha")
    identifier = remote_sync.create_urls(sm.EndpointUrl(path=local_root),
                                         docker_url(dockerd, python_container, root))
    try:
        wait_files(lambda: container_files(dockerd, python_container, root), {"a.txt": "alpha"},
                   "the local file to reach the container")
        container_write(dockerd, python_container, f"{root}/sub/b.txt", "from container")
        wait_files(lambda: local_files(local_root), {"a.txt": "alpha", "sub/b.txt": "from container"},
                   "the container's file to reach local")
        write(local_root, "a.txt", "edited")
        wait_files(lambda: container_files(dockerd, python_container, root),
                   {"a.txt": "edited", "sub/b.txt": "from container"}, "the edit to propagate")
        state = remote_sync.state(identifier)
        assert state.status == "watching" and state.beta.connected
        assert state.beta.url.environment == dockerd.environment
        assert not leftovers(local_root)
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)


def test_docker_to_ssh_through_the_daemon_one_way_safe(remote_sync, dockerd, python_container,
                                                       sshd):
    root = "/root/app-r2r"
    remote_root = os.path.join(sshd.home, "r2r")
    shutil.rmtree(remote_root, ignore_errors=True)
    container_write(dockerd, python_container, f"{root}/code/main.py", "print('hi')")
    write_as(sshd.home, remote_root, "beta-only.txt", "kept")
    identifier = remote_sync.create_urls(docker_url(dockerd, python_container, root),
                                         ssh_url("r2r"), mode="one-way-safe")
    try:
        wait_files(lambda: local_files(remote_root),
                   {"code/main.py": "print('hi')", "beta-only.txt": "kept"},
                   "the container's files to reach the ssh remote (beta-only file kept)")
        container_write(dockerd, python_container, f"{root}/code/main.py", "print('edited')")
        wait_files(lambda: local_files(remote_root),
                   {"code/main.py": "print('edited')", "beta-only.txt": "kept"},
                   "the edit to reach the ssh remote")
        assert container_files(dockerd, python_container, root) == {"code/main.py": "print('edited')"}
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)


def test_one_way_replica_to_docker(remote_sync, dockerd, python_container, local_root):
    root = "/root/app-replica"
    container_write(dockerd, python_container, f"{root}/extra.txt", "to be removed")
    write(local_root, "src.txt", "source")
    identifier = remote_sync.create_urls(sm.EndpointUrl(path=local_root),
                                         docker_url(dockerd, python_container, root),
                                         mode="one-way-replica")
    try:
        wait_files(lambda: container_files(dockerd, python_container, root), {"src.txt": "source"},
                   "beta to become a replica of alpha")
        container_write(dockerd, python_container, f"{root}/src.txt", "changed on beta")
        wait_files(lambda: container_files(dockerd, python_container, root), {"src.txt": "source"},
                   "beta's change to be overwritten")
        assert local_files(local_root) == {"src.txt": "source"}
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)


def test_container_stopped_and_started_recovers(remote_sync, dockerd, container, local_root):
    root = "/root/app"
    write(local_root, "a.txt", "one")
    identifier = remote_sync.create_urls(sm.EndpointUrl(path=local_root),
                                         docker_url(dockerd, container, root))
    try:
        wait_files(lambda: container_files(dockerd, container, root), {"a.txt": "one"},
                   "the first sync")
        dockerd.docker("kill", container)
        wait_until(lambda: (s := remote_sync.state(identifier)).status.startswith("connecting")
                   and not s.beta.connected and s.last_error, 20, interval=0.05,
                   what="the session to report the lost container")
        write(local_root, "b.txt", "while stopped")
        dockerd.docker("start", container)
        wait_files(lambda: container_files(dockerd, container, root),
                   {"a.txt": "one", "b.txt": "while stopped"}, "the session to recover", 40)
        assert remote_sync.state(identifier).beta.connected
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)


def test_container_recreated_empty_halts_instead_of_deleting(remote_sync, dockerd, python_image,
                                                             container, local_root):
    root = "/root/app"
    write(local_root, "precious/a.txt", "keep me")
    write(local_root, "b.txt", "me too")
    identifier = remote_sync.create_urls(sm.EndpointUrl(path=local_root),
                                         docker_url(dockerd, container, root))
    try:
        expected = {"precious/a.txt": "keep me", "b.txt": "me too"}
        wait_files(lambda: container_files(dockerd, container, root), expected, "the first sync")
        dockerd.docker("rm", "-f", container)
        dockerd.docker("run", "-d", "--name", container, "--network", "none", python_image)
        state = remote_sync.wait_status(identifier, "halted-on-root-deletion",
                                        "halted-on-root-emptied", timeout=60)
        assert not state.alpha.url.host  # alpha is the local side
        assert local_files(local_root) == expected
        assert container_files(dockerd, container, root) == {}
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)
    assert local_files(local_root) == expected


def test_docker_url_user_runs_the_agent_as_that_user(remote_sync, dockerd, python_container,
                                                     local_root):
    dockerd.docker("exec", python_container, "sh", "-c", "id dev || useradd -m dev")
    write(local_root, "mine.txt", "owned by dev")
    identifier = remote_sync.create_urls(sm.EndpointUrl(path=local_root),
                                         docker_url(dockerd, python_container, "~/app", "dev"))
    try:
        wait_files(lambda: container_files(dockerd, python_container, "/home/dev/app"),
                   {"mine.txt": "owned by dev"}, "the file to reach dev's home in the container")
        owner = dockerd.docker("exec", python_container, "stat", "-c", "%U",
                               "/home/dev/app/mine.txt").stdout.decode().strip()
        assert owner == "dev"
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)
