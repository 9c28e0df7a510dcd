"""Forwarding to and from a container (``--network none``) of the private dockerd, through the
real CLI and daemon: the agent in the container dials (local -> Docker) or listens (Docker ->
local, reverse) and the connections are multiplexed over its ``docker exec`` tunnel.

The servers inside the container are started with ``docker exec -d`` and live as long as the
session's container.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import socket

from forward.servers import EchoServer, http_server
from forwardsession.conftest import connect, echo_once, free_port, http_get, recv_all
from foundation.conftest import wait_until

ECHO = (
    "import socket,sys,threading\n"
    "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('127.0.0.1',int(sys.argv[1])));s.listen(128)\n"
    "def h(c):\n"
    " while True:\n"
    "  d=c.recv(65536)\n"
    "  if not d: break\n"
    "  c.sendall(d)\n"
    " c.close()\n"
    "while True:\n"
    " c,_=s.accept();threading.Thread(target=h,args=(c,),daemon=True).start()\n"
)
CLIENT = (  # argv: port payload-size; sends random bytes, half-closes, checks the echo
    "import hashlib,os,socket,sys\n"
    "p=os.urandom(int(sys.argv[2]))\n"
    "c=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=20)\n"
    "c.sendall(p);c.shutdown(socket.SHUT_WR)\n"
    "b=b''\n"
    "while True:\n"
    " d=c.recv(65536)\n"
    " if not d: break\n"
    " b+=d\n"
    "print('same' if b==p else 'different %d %d'%(len(b),len(p)))\n"
)


def _in_container(dockerd, container, port: int) -> bool:
    probe = f"import socket;socket.create_connection(('127.0.0.1',{port}),timeout=1)"
    return dockerd.docker("exec", container, "python3", "-c", probe, check=False).returncode == 0


def test_local_to_docker_http_echo_and_many_connections(docker_daemon, dockerd,
                                                        python_container):
    web_port, echo_port = free_port(), free_port()
    dockerd.docker("exec", "-d", python_container, "python3", "-m", "http.server",
                   str(web_port), "--bind", "127.0.0.1", "--directory", "/etc")
    dockerd.docker("exec", "-d", python_container, "python3", "-c", ECHO, str(echo_port))
    wait_until(lambda: _in_container(dockerd, python_container, web_port)
               and _in_container(dockerd, python_container, echo_port), 30,
               interval=0.2, what="the servers in the container")
    web_source, echo_source = (f"tcp:127.0.0.1:{free_port()}" for _ in range(2))
    docker_daemon.create(web_source, f"docker://{python_container}:tcp:127.0.0.1:{web_port}",
                         "-n", "web")
    docker_daemon.create(echo_source,
                         f"docker://{python_container}:tcp:127.0.0.1:{echo_port}", "-n", "echo")
    status, body = http_get(web_source, "/os-release")
    assert status == 200 and b"bookworm" in body
    assert echo_once(echo_source, os.urandom(3 << 20), timeout=30)

    def one(index: int) -> bool:
        payload = os.urandom(32 * 1024 + index * 331)
        with connect(echo_source, timeout=60) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            return hashlib.sha256(recv_all(sock)).digest() == hashlib.sha256(payload).digest()

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(50)))
    assert all(results), f"{results.count(False)} of 50 connections went wrong"
    state = docker_daemon.session("echo")
    assert state["status"] == "forwarding" and state["totalConnections"] >= 51


def test_docker_destination_refused_is_counted_not_fatal(docker_daemon, python_container):
    source = f"tcp:127.0.0.1:{free_port()}"
    docker_daemon.create(source, f"docker://{python_container}:tcp:127.0.0.1:{free_port()}",
                         "-n", "nothing")
    with connect(source) as sock:
        sock.settimeout(10)
        assert recv_all(sock) == b""
    state = wait_until(lambda: (s := docker_daemon.session("nothing"))["errors"] >= 1 and s,
                       10, what="the error to be counted")
    assert "refused" in state["lastError"], state["lastError"]


def test_reverse_docker_to_local(docker_daemon, dockerd, python_container):
    echo = EchoServer("tcp:127.0.0.1:0")
    port = free_port()
    try:
        docker_daemon.create(f"docker://{python_container}:tcp:127.0.0.1:{port}",
                             echo.endpoint, "-n", "reverse")
        done = dockerd.docker("exec", python_container, "python3", "-c", CLIENT, str(port),
                              str(1 << 20))
        assert done.stdout.decode().strip() == "same"
        # the address is taken now: a second reverse forward there is a clear error
        result = docker_daemon.forward(
            "create", f"docker://{python_container}:tcp:127.0.0.1:{port}", echo.endpoint,
            check=False)
        assert result.returncode != 0 and "address already in use" in result.stderr, \
            result.stderr
        docker_daemon.forward("terminate", "reverse")
        wait_until(lambda: not _in_container(dockerd, python_container, port), 10,
                   interval=0.2, what="the container port to close")
    finally:
        echo.close()


def test_unknown_container_is_a_clear_error(docker_daemon):
    with http_server("tcp") as web:
        result = docker_daemon.forward("create", f"tcp:127.0.0.1:{free_port()}",
                                       f"docker://no-such-container-h13:{web}", check=False)
    assert result.returncode != 0
    assert "no-such-container-h13" in result.stderr, result.stderr
    assert docker_daemon.sessions() == []


def test_remote_to_remote_ssh_to_docker_goes_through_this_machine(docker_daemon, dockerd,
                                                                  python_container, sshd):
    """The sshd listens (reverse), the agent in the container dials: both remotes, the bytes
    pass through the forwarder here."""
    target = os.path.join(docker_daemon.home, ".ssh")
    os.makedirs(target, mode=0o700)
    for name in ("config", "known_hosts"):
        with open(os.path.join(sshd.client.directory, name)) as source, \
                open(os.path.join(target, name), "w") as copy:
            copy.write(source.read())
    echo_port, remote_port = free_port(), free_port()
    dockerd.docker("exec", "-d", python_container, "python3", "-c", ECHO, str(echo_port))
    wait_until(lambda: _in_container(dockerd, python_container, echo_port), 30, interval=0.2,
               what="the echo server in the container")
    docker_daemon.create(f"testhost:tcp:127.0.0.1:{remote_port}",
                         f"docker://{python_container}:tcp:127.0.0.1:{echo_port}", "-n", "r2r")
    assert echo_once(f"tcp:127.0.0.1:{remote_port}", os.urandom(1 << 20), timeout=30)


def test_kill_9_of_a_reverse_docker_forwarder_listens_again(docker_daemon, dockerd,
                                                            python_container):
    import signal
    import time

    from foundation.conftest import alive

    echo = EchoServer("tcp:127.0.0.1:0")
    port = free_port()
    try:
        session = docker_daemon.create(f"docker://{python_container}:tcp:127.0.0.1:{port}",
                                       echo.endpoint, "-n", "reverse-killed")
        pid = docker_daemon.actor_pids(session)["forwarder"]
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), 5, what="the kill")

        def works():
            done = dockerd.docker("exec", python_container, "python3", "-c", CLIENT, str(port),
                                  "1000", check=False)
            return done.stdout.decode().strip() == "same"

        wait_until(works, 30, interval=0.1, what="the reverse forward to work again")
        print(f"reverse docker forward working again {time.monotonic() - killed_at:.2f} s "
              "after kill -9 of its forwarder")
        assert docker_daemon.session("reverse-killed")["status"] == "forwarding"
    finally:
        echo.close()
