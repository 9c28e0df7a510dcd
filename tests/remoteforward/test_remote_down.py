"""A remote that goes down does not halt a forwarding session: the same forwarder keeps its
local listener (refusing connections at once meanwhile), ``forward list`` says which side it is
connecting to and why, and forwarding resumes by itself when the remote is back. Through the
real CLI and daemon, with a container that is killed and started again, and a private sshd
that is stopped (its connections cut) and started again on the same port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from forward.servers import EchoServer
from forwardsession.conftest import connect, echo_once, free_port, recv_all
from foundation.conftest import alive, wait_until
from remote import infra

from .test_docker_forward import ECHO, _in_container
from .test_ssh_forward import _descendants


def _refused_at_once(endpoint: str) -> bool:
    """A connection to the forward is accepted and closed without data (nothing to dial)."""
    try:
        with connect(endpoint, timeout=5) as sock:
            sock.settimeout(5)
            return recv_all(sock) == b""
    except OSError:
        return False


def test_docker_container_killed_then_started_again(docker_daemon, dockerd, python_image):
    container = dockerd.run_container(python_image)
    echo_port = free_port()
    local_echo = EchoServer("tcp:127.0.0.1:0")
    reverse_path = f"/tmp/ma-down-{os.getpid()}-{free_port()}.sock"

    def start_echo():
        dockerd.docker("exec", "-d", container, "python3", "-c", ECHO, str(echo_port))
        wait_until(lambda: _in_container(dockerd, container, echo_port), 30, interval=0.2,
                   what="the echo server in the container")

    def reverse_works() -> bool:
        probe = ("import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
                 "s.sendall(b'back');s.shutdown(socket.SHUT_WR);print(s.recv(100).decode())")
        done = dockerd.docker("exec", container, "python3", "-c", probe, reverse_path,
                              check=False)
        return done.stdout.decode().strip() == "back"

    try:
        start_echo()
        source = f"tcp:127.0.0.1:{free_port()}"
        forward = docker_daemon.create(source, f"docker://{container}:tcp:127.0.0.1:{echo_port}",
                                       "-n", "to-container")
        reverse = docker_daemon.create(f"docker://{container}:unix:{reverse_path}",
                                       local_echo.endpoint, "-n", "from-container")
        assert echo_once(source, b"before") and reverse_works()
        pids = {s: docker_daemon.actor_pids(s)["forwarder"] for s in (forward, reverse)}

        dockerd.docker("kill", container)
        down = docker_daemon.wait_session(
            "to-container", lambda s: s["status"] == "connecting-destination"
            and "not running" in s["lastError"], 30,
            what="a reconnection attempt to fail because the container is not running")
        assert not down["destination"]["connected"] and down["source"]["connected"]
        up_side = docker_daemon.wait_session(
            "from-container", lambda s: s["status"] == "connecting-source"
            and "not running" in s["lastError"], 30, what="the reverse side to be connecting")
        assert not up_side["source"]["connected"] and up_side["listening"] == ""
        assert _refused_at_once(source)  # the local listener stays, nothing to dial
        listing = docker_daemon.forward("list", "to-container").stdout
        assert "Status: Connecting to destination" in listing, listing
        assert "Last error:" in listing and "not running" in listing, listing
        for session, pid in pids.items():  # not a crash: the same forwarders, no halt
            assert alive(pid) and docker_daemon.actor_pids(session)["forwarder"] == pid

        dockerd.docker("start", container)
        back = time.monotonic()
        start_echo()
        wait_until(lambda: echo_once(source, b"after", timeout=2), 30, interval=0.1,
                   what="forwarding into the container again")
        print(f"after the container started again: forwarding again in "
              f"{time.monotonic() - back:.2f} s (back-off at most 5 s)")
        # the socket file of the killed agent was reclaimed: the reverse forward listens again
        wait_until(reverse_works, 30, interval=0.2, what="the reverse forward again")
        for name in ("to-container", "from-container"):
            state = docker_daemon.session(name)
            assert state["status"] == "forwarding", state
            assert state["source"]["connected"] and state["destination"]["connected"], state

        # resumed while the container is down: the session waits for it instead of failing
        docker_daemon.forward("pause", "to-container")
        dockerd.docker("kill", container)
        resumed = docker_daemon.forward("resume", "to-container", check=False)
        assert resumed.returncode == 0, resumed.stderr
        docker_daemon.wait_session("to-container",
                                   lambda s: s["status"] == "connecting-destination", 30,
                                   what="the resumed session to be connecting")
        dockerd.docker("start", container)
        start_echo()
        wait_until(lambda: echo_once(source, b"resumed", timeout=2), 30, interval=0.1,
                   what="forwarding after a resume while the container was down")
    finally:
        local_echo.close()


@pytest.fixture
def own_sshd(forward_daemon):
    """A private sshd for this test alone (it is stopped and started again), reachable from the
    daemon as ``testhost``."""
    root = tempfile.mkdtemp(prefix="ma-sshd-", dir="/tmp")
    server = infra.PrivateSshd(root).start()
    target = os.path.join(forward_daemon.home, ".ssh")
    os.makedirs(target, mode=0o700)
    for name in ("config", "known_hosts"):
        shutil.copy(os.path.join(server.client.directory, name), os.path.join(target, name))
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _stop_with_connections(server: infra.PrivateSshd) -> None:
    children = _descendants(server.session_processes())
    server.stop()
    for pid in children:  # the per-connection servers outlive the listener otherwise
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not infra.port_open(server.port), 10, what="sshd to stop")


def _start_again(server: infra.PrivateSshd) -> None:
    server.process = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-f", os.path.join(server.root, "sshd_config"), "-E",
         server.log_path], stdin=subprocess.DEVNULL)
    wait_until(lambda: infra.port_open(server.port), 10, what="sshd listening again")


def test_sshd_stopped_then_started_again(forward_daemon, own_sshd):
    echo = EchoServer("tcp:127.0.0.1:0")
    source, reverse_port = f"tcp:127.0.0.1:{free_port()}", free_port()
    try:
        forward = forward_daemon.create(source, f"testhost:{echo.endpoint}", "-n", "to-ssh")
        reverse = forward_daemon.create(f"testhost:tcp:127.0.0.1:{reverse_port}",
                                        echo.endpoint, "-n", "from-ssh")
        reverse_endpoint = f"tcp:127.0.0.1:{reverse_port}"
        assert echo_once(source, b"before") and echo_once(reverse_endpoint, b"before")
        pids = {s: forward_daemon.actor_pids(s)["forwarder"] for s in (forward, reverse)}

        _stop_with_connections(own_sshd)
        down = forward_daemon.wait_session(
            "to-ssh", lambda s: s["status"] == "connecting-destination"
            and "connection refused" in s["lastError"], 30,
            what="a reconnection attempt to be refused")
        assert not down["destination"]["connected"]
        forward_daemon.wait_session(
            "from-ssh", lambda s: s["status"] == "connecting-source"
            and "connection refused" in s["lastError"], 30,
            what="the reverse side to be connecting")
        assert _refused_at_once(source)
        for session, pid in pids.items():
            assert alive(pid) and forward_daemon.actor_pids(session)["forwarder"] == pid

        _start_again(own_sshd)
        back = time.monotonic()
        wait_until(lambda: echo_once(source, b"after", timeout=2), 30, interval=0.1,
                   what="forwarding over SSH again")
        forward_again = time.monotonic() - back
        wait_until(lambda: echo_once(reverse_endpoint, b"after", timeout=2), 30, interval=0.1,
                   what="the sshd to listen for the reverse forward again")
        print(f"after the sshd came back: forwarding again in {forward_again:.2f} s, reverse "
              f"in {time.monotonic() - back:.2f} s (back-off at most 5 s)")
        assert forward_daemon.session("to-ssh")["status"] == "forwarding"
        assert forward_daemon.session("from-ssh")["status"] == "forwarding"
    finally:
        echo.close()

