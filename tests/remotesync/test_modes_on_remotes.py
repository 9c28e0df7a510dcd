"""All four synchronization modes against each remote kind (the private sshd, a bare-python
container), with watching on: one session per row, the remote as beta in some rows and as alpha
in others, and each row asserting what its mode promises as a user sees it on disk.

Every row starts from the same two trees, created before the session:
alpha ``a.txt``, ``c.txt`` ("alpha c"); beta ``b.txt``, ``c.txt`` ("beta c"). ``c.txt`` was
created on both sides with different content: a conflict for the safe modes, alpha's copy for
the others. Changes afterwards are made on disk and waited for (no flush), except where a
mode promises that something does *not* happen: a flush is then the point after which the
test looks.

The container's root is a host directory bind-mounted into it, so both remote kinds are read
and written here directly (files on the SSH side are given to the login user, as if written
by it).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass

import pytest

from mutagen_actors.wire.messages import sync as sm

from .conftest import docker_url, leftovers, ssh_url, tree, wait_until, write, write_as

WAIT = 30.0
CONTAINER_ROOT = "/srv/modes"


@dataclass
class Place:
    """One endpoint root as the test sees it on this machine, and its URL."""

    path: str
    url: sm.EndpointUrl
    owner_home: str = ""  # files below it are given to that home's owner (SSH login user)

    def write(self, relative: str, text: str) -> None:
        if self.owner_home:
            write_as(self.owner_home, self.path, relative, text)
        else:
            write(self.path, relative, text)

    def remove(self, relative: str) -> None:
        os.unlink(os.path.join(self.path, relative))

    def files(self) -> dict:
        return {k: v[1].decode() for k, v in tree(self.path).items() if v[0] == "file"}


def wait_files(place: Place, expected: dict, what: str) -> None:
    try:
        wait_until(lambda: place.files() == expected, WAIT, interval=0.05, what=what)
    except AssertionError:
        raise AssertionError(f"{what}: expected {expected}, found {place.files()}") from None


@pytest.fixture(scope="module")
def bound_container(dockerd, python_image):
    """A container whose ``CONTAINER_ROOT`` is a host directory (name, host directory)."""
    host = tempfile.mkdtemp(prefix="mr-modes-", dir="/tmp")
    name = dockerd.run_container(python_image, "-v", f"{host}:{CONTAINER_ROOT}")
    yield name, host
    dockerd.docker("rm", "-f", name, check=False)
    shutil.rmtree(host, ignore_errors=True)


@pytest.fixture
def places(request, sshd, dockerd, bound_container):
    """(alpha, beta) for this row: a local root and the remote of the row's kind."""
    mode, kind, remote_side = request.param
    name = f"modes-{mode}-{kind}-{remote_side}"
    base = tempfile.mkdtemp(prefix="mr-modes-local-")
    local = Place(os.path.join(base, "root"), sm.EndpointUrl(path=os.path.join(base, "root")))
    if kind == "ssh":
        path = os.path.join(sshd.home, name)
        remote = Place(path, ssh_url(name), owner_home=sshd.home)
    else:
        container, host = bound_container
        path = os.path.join(host, name)
        remote = Place(path, docker_url(dockerd, container, f"{CONTAINER_ROOT}/{name}"))
    shutil.rmtree(remote.path, ignore_errors=True)
    os.makedirs(local.path)
    if remote.owner_home:  # the SSH login user's own directory
        os.makedirs(remote.path)
        owner = os.stat(remote.owner_home)
        os.chown(remote.path, owner.st_uid, owner.st_gid)
    pair = (remote, local) if remote_side == "alpha" else (local, remote)
    yield pair
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(remote.path, ignore_errors=True)


def seed(alpha: Place, beta: Place) -> None:
    alpha.write("a.txt", "alpha a")
    alpha.write("c.txt", "alpha c")
    beta.write("b.txt", "beta b")
    beta.write("c.txt", "beta c")


def listed_conflicts(remote_sync, identifier: str) -> list[str]:
    """Roots of the conflicts ``sync list --json`` shows for the session."""
    result = remote_sync.daemon.cli("sync", "list", "--json", identifier, check=True)
    (session,) = json.loads(result.stdout)
    return [conflict["root"] for conflict in session["conflicts"]]


# ------------------------------------------------------------------- what each mode promises


def two_way_safe(sync, identifier, alpha: Place, beta: Place) -> None:
    wait_files(alpha, {"a.txt": "alpha a", "b.txt": "beta b", "c.txt": "alpha c"},
               "beta's file to reach alpha, alpha's c.txt untouched")
    wait_files(beta, {"a.txt": "alpha a", "b.txt": "beta b", "c.txt": "beta c"},
               "alpha's file to reach beta, beta's c.txt untouched")
    wait_until(lambda: listed_conflicts(sync, identifier) == ["c.txt"], WAIT, interval=0.1,
               what="the conflict on c.txt in list --json")
    alpha.write("new.txt", "new on alpha")
    beta.write("b.txt", "beta b, edited")
    alpha.remove("a.txt")
    expected = {"b.txt": "beta b, edited", "new.txt": "new on alpha"}
    wait_files(beta, {**expected, "c.txt": "beta c"}, "alpha's creation and deletion on beta")
    wait_files(alpha, {**expected, "c.txt": "alpha c"}, "beta's edit on alpha")
    assert listed_conflicts(sync, identifier) == ["c.txt"]


def two_way_resolved(sync, identifier, alpha: Place, beta: Place) -> None:
    merged = {"a.txt": "alpha a", "b.txt": "beta b", "c.txt": "alpha c"}
    wait_files(beta, merged, "alpha's c.txt to win on beta")
    wait_files(alpha, merged, "beta's file to reach alpha")
    assert listed_conflicts(sync, identifier) == []
    beta.write("new.txt", "new on beta")
    beta.remove("b.txt")
    alpha.write("a.txt", "alpha a, edited")
    expected = {"a.txt": "alpha a, edited", "c.txt": "alpha c", "new.txt": "new on beta"}
    wait_files(alpha, expected, "beta's creation and deletion on alpha")
    wait_files(beta, expected, "alpha's edit on beta")


def one_way_safe(sync, identifier, alpha: Place, beta: Place) -> None:
    wait_files(beta, {"a.txt": "alpha a", "b.txt": "beta b", "c.txt": "beta c"},
               "alpha's file on beta, beta's own files kept")
    alpha.write("new.txt", "new on alpha")
    wait_files(beta, {"a.txt": "alpha a", "b.txt": "beta b", "c.txt": "beta c",
                      "new.txt": "new on alpha"}, "alpha's creation on beta")
    beta.write("a.txt", "beta's own edit")
    beta.write("beta-only.txt", "stays on beta")
    sync.flush(identifier)
    assert beta.files() == {"a.txt": "beta's own edit", "b.txt": "beta b", "c.txt": "beta c",
                            "new.txt": "new on alpha", "beta-only.txt": "stays on beta"}
    assert alpha.files() == {"a.txt": "alpha a", "c.txt": "alpha c", "new.txt": "new on alpha"}


def one_way_replica(sync, identifier, alpha: Place, beta: Place) -> None:
    mirror = {"a.txt": "alpha a", "c.txt": "alpha c"}
    wait_files(beta, mirror, "beta to mirror alpha (b.txt removed, c.txt replaced)")
    beta.write("a.txt", "beta edit")
    wait_files(beta, mirror, "beta's edit to be reverted")
    beta.write("extra.txt", "extra on beta")
    wait_files(beta, mirror, "beta's extra file to be removed")
    alpha.write("new.txt", "new on alpha")
    alpha.remove("a.txt")
    mirror = {"c.txt": "alpha c", "new.txt": "new on alpha"}
    wait_files(beta, mirror, "alpha's creation and deletion on beta")
    assert alpha.files() == mirror


SCENARIOS = {"two-way-safe": two_way_safe, "two-way-resolved": two_way_resolved,
             "one-way-safe": one_way_safe, "one-way-replica": one_way_replica}
ROWS = [
    ("two-way-safe", "ssh", "beta"), ("two-way-safe", "docker", "alpha"),
    ("two-way-resolved", "ssh", "alpha"), ("two-way-resolved", "docker", "beta"),
    ("one-way-safe", "ssh", "alpha"), ("one-way-safe", "docker", "beta"),
    ("one-way-replica", "ssh", "beta"), ("one-way-replica", "docker", "alpha"),
]


@pytest.mark.parametrize("places", ROWS, indirect=True,
                         ids=[f"{mode}-{kind}-is-{side}" for mode, kind, side in ROWS])
def test_mode_on_remote(remote_sync, places, request):
    alpha, beta = places
    mode = request.node.callspec.params["places"][0]
    seed(alpha, beta)
    identifier = remote_sync.create_urls(alpha.url, beta.url, mode=mode)
    try:
        state = remote_sync.state(identifier)
        assert state.alpha.connected and state.beta.connected
        SCENARIOS[mode](remote_sync, identifier, alpha, beta)
        assert not leftovers(alpha.path, beta.path)
        assert remote_sync.state(identifier).last_error == ""
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)
