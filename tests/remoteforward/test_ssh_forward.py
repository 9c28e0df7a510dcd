"""Forwarding to and from the private sshd, through the real CLI and daemon.

local -> SSH: the forwarder opens direct-tcpip / direct-streamlocal channels on its SSH
connection (``ssh -L``); SSH -> local (reverse): the sshd listens (``ssh -R``) exactly where the
user said and the connections come back over the same SSH connection. The servers behind run
on 127.0.0.1 of this machine, which is also the sshd's loopback.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import signal
import socket
import time

from forward.servers import EchoServer, HashSink, generated, http_server
from forwardsession.conftest import (
    connect,
    echo_once,
    free_port,
    http_get,
    listening,
    recv_all,
    recv_exactly,
)
from foundation.conftest import alive, wait_until


def test_local_to_ssh_echo_http_and_unix(ssh_daemon, tmp_path):
    echo = EchoServer("tcp:127.0.0.1:0")
    # the remote user (the sshd's login user) must reach the socket: /tmp, mode 0777
    unix_echo = EchoServer(f"unix:/tmp/ma-echo-{os.getpid()}-{free_port()}.sock")
    os.chmod(unix_echo.endpoint[5:], 0o777)
    source, web_source, unix_source = (f"tcp:127.0.0.1:{free_port()}" for _ in range(3))
    try:
        with http_server("tcp") as web:
            ssh_daemon.create(source, f"testhost:{echo.endpoint}", "-n", "echo")
            ssh_daemon.create(web_source, f"testhost:{web}", "-n", "web")
            ssh_daemon.create(unix_source, f"testhost:{unix_echo.endpoint}", "-n", "unixecho")
            assert echo_once(source, b"through ssh " * 1000)
            assert echo_once(unix_source, b"to a unix socket on the remote")
            status, body = http_get(web_source, "/page")
            assert status == 200 and body == b"hello from /page" * 1000
            state = ssh_daemon.session("echo")
            assert state["status"] == "forwarding"
            wait_until(lambda: ssh_daemon.session("echo")["totalConnections"] >= 1, 10,
                       what="statistics")
    finally:
        echo.close()
        unix_echo.close()
        os.unlink(unix_echo.endpoint[5:])


def test_100_concurrent_connections_with_random_data_verified_by_hash(ssh_daemon):
    sink = HashSink("tcp:127.0.0.1:0")
    source = f"tcp:127.0.0.1:{free_port()}"
    try:
        ssh_daemon.create(source, f"testhost:{sink.endpoint}")

        def one(index: int) -> bool:
            payload = os.urandom(64 * 1024 + index * 997)
            with connect(source, timeout=60) as sock:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                answer = recv_all(sock).decode()
            return answer == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n"

        with concurrent.futures.ThreadPoolExecutor(100) as pool:
            results = list(pool.map(one, range(100)))
        assert all(results), f"{results.count(False)} of 100 connections went wrong"
    finally:
        sink.close()


def test_1_gib_through_one_connection_through_ssh_verified_by_hash(ssh_daemon):
    """local listener -> the forwarder's SSH connection -> sshd -> a sink on the remote that
    hashes as it reads; the sender hashes as it writes (1 MiB at a time, no big buffers)."""
    size = 1 << 30
    sink = HashSink("tcp:127.0.0.1:0")
    source = f"tcp:127.0.0.1:{free_port()}"
    try:
        ssh_daemon.create(source, f"testhost:{sink.endpoint}", "-n", "gib")
        digest = hashlib.sha256()
        started = time.perf_counter()
        with connect(source, timeout=120) as sock:
            for chunk in generated(size):
                digest.update(chunk)
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
            answer = recv_all(sock).decode()
        elapsed = time.perf_counter() - started
        assert answer == f"{size} {digest.hexdigest()}\n"
        state = ssh_daemon.wait_session("gib", lambda s: s["totalOutboundData"] == size, 10,
                                        what="the outbound byte count")
        assert state["errors"] == 0
        print(f"1 GiB through one connection through ssh (sha256 at both ends): {elapsed:.2f} s, "
              f"load average {os.getloadavg()[0]:.2f}")
    finally:
        sink.close()


def test_half_close_passes_through_ssh_and_the_other_direction_keeps_flowing(ssh_daemon):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    source = f"tcp:127.0.0.1:{free_port()}"
    try:
        ssh_daemon.create(source, f"testhost:tcp:127.0.0.1:{server.getsockname()[1]}")
        with connect(source) as client:
            client.sendall(b"request")
            client.shutdown(socket.SHUT_WR)
            server.settimeout(10)
            accepted, _ = server.accept()
            with accepted:
                accepted.settimeout(10)
                assert recv_all(accepted) == b"request"  # the half-close arrived
                accepted.sendall(b"answer after your EOF")
                accepted.shutdown(socket.SHUT_WR)
                assert recv_all(client) == b"answer after your EOF"
    finally:
        server.close()


def test_destination_down_then_up_counts_errors_and_recovers(ssh_daemon):
    port = free_port()
    source = f"tcp:127.0.0.1:{free_port()}"
    ssh_daemon.create(source, f"testhost:tcp:127.0.0.1:{port}", "-n", "flaky")
    with connect(source) as sock:  # refused on the remote: closed promptly, counted
        sock.settimeout(10)
        assert recv_all(sock) == b""
    state = wait_until(lambda: (s := ssh_daemon.session("flaky"))["errors"] >= 1 and s, 10,
                       what="the error to be counted")
    assert "connection refused" in state["lastError"].lower() or \
        "refused" in state["lastError"].lower(), state["lastError"]
    echo = EchoServer(f"tcp:127.0.0.1:{port}")
    try:
        assert echo_once(source, b"up again")
        assert ssh_daemon.session("flaky")["status"] == "forwarding"
    finally:
        echo.close()


def test_reverse_ssh_to_local(ssh_daemon, tmp_path):
    echo = EchoServer("tcp:127.0.0.1:0")
    remote_port = free_port()
    remote_socket = f"/tmp/ma-rev-{os.getpid()}-{remote_port}.sock"
    try:
        with http_server("tcp") as web:
            ssh_daemon.create(f"testhost:tcp:127.0.0.1:{remote_port}", web, "-n", "reverse")
            # the sshd listens on the address the user named
            assert listening(remote_port)
            status, body = http_get(f"tcp:127.0.0.1:{remote_port}", "/back")
            assert status == 200 and body == b"hello from /back" * 1000
            ssh_daemon.create(f"testhost:unix:{remote_socket}", echo.endpoint, "-n", "revunix")
            assert echo_once(f"unix:{remote_socket}", b"reverse over a unix socket")
            ssh_daemon.forward("terminate", "reverse")
            wait_until(lambda: not listening(remote_port), 10, what="the remote port to close")
    finally:
        echo.close()


def test_kill_9_of_the_forwarder_drops_only_its_connections_and_listens_again(ssh_daemon):
    echo = EchoServer("tcp:127.0.0.1:0")
    source, other = (f"tcp:127.0.0.1:{free_port()}" for _ in range(2))
    try:
        web = ssh_daemon.create(source, f"testhost:{echo.endpoint}", "-n", "killed")
        ssh_daemon.create(other, f"testhost:{echo.endpoint}", "-n", "other")
        with connect(other) as held:
            held.sendall(b"before")
            assert recv_exactly(held, 6) == b"before"
            pid = ssh_daemon.actor_pids(web)["forwarder"]
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not alive(pid), 5, what="the kill")
            wait_until(lambda: listening(int(source.rpartition(":")[2])), 5, interval=0.005,
                       what="listening again")
            listening_after = time.monotonic() - killed_at
            wait_until(lambda: echo_once(source, b"again", timeout=2), 10, interval=0.02,
                       what="the forward to work again")
            print(f"listening again {listening_after * 1000:.0f} ms after kill -9, forwarding "
                  f"through ssh again after {(time.monotonic() - killed_at) * 1000:.0f} ms")
            assert listening_after < 1.0
            held.sendall(b"still here")
            assert recv_exactly(held, 10) == b"still here"
    finally:
        echo.close()


def test_bad_input_is_a_clear_error_and_no_session(ssh_daemon, sshd):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    cases = [
        (f"testhost:tcp:127.0.0.1:{taken.getsockname()[1]}", "tcp:127.0.0.1:9",
         "address already in use"),
        (f"tcp:127.0.0.1:{free_port()}", "testhost:tcp:127.0.0.1:70000", "70000"),
        (f"tcp:127.0.0.1:{free_port()}", "testhost:unix:/" + "x" * 120, "too long"),
        (f"tcp:127.0.0.1:{free_port()}", "testhost:udp:1.2.3.4:5", "invalid"),
        (f"tcp:127.0.0.1:{free_port()}", "nosuchhost.invalid:tcp:127.0.0.1:80",
         "unable to connect"),
    ]
    try:
        for source, destination, expected in cases:
            result = ssh_daemon.forward("create", source, destination, check=False)
            assert result.returncode != 0, (source, destination, result.stdout)
            assert expected in result.stderr, (expected, result.stderr)
            errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
            assert len(errors) == 1, result.stderr
        assert ssh_daemon.sessions() == []
    finally:
        taken.close()


def test_kill_9_of_a_reverse_ssh_forwarder_listens_again(ssh_daemon):
    echo = EchoServer("tcp:127.0.0.1:0")
    port = free_port()
    try:
        session = ssh_daemon.create(f"testhost:tcp:127.0.0.1:{port}", echo.endpoint)
        pid = ssh_daemon.actor_pids(session)["forwarder"]
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), 5, what="the kill")
        wait_until(lambda: echo_once(f"tcp:127.0.0.1:{port}", b"again", timeout=2), 30,
                   interval=0.05, what="the reverse forward to work again")
        print(f"reverse ssh forward working again {time.monotonic() - killed_at:.2f} s after "
              "kill -9 of its forwarder")
    finally:
        echo.close()


def test_a_cut_ssh_connection_is_reconnected(ssh_daemon, sshd):
    echo = EchoServer("tcp:127.0.0.1:0")
    source = f"tcp:127.0.0.1:{free_port()}"
    try:
        session = ssh_daemon.create(source, f"testhost:{echo.endpoint}", "-n", "cut")
        assert echo_once(source, b"before the cut")
        forwarder = ssh_daemon.actor_pids(session)["forwarder"]
        assert sshd.session_processes()
        for pid in _descendants(sshd.session_processes()):  # every SSH connection's server side
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        cut_at = time.monotonic()
        wait_until(lambda: echo_once(source, b"after the cut", timeout=2), 30, interval=0.1,
                   what="forwarding again over a new SSH connection")
        print(f"forwarding again {time.monotonic() - cut_at:.2f} s after the SSH connection "
              "was cut")
        assert ssh_daemon.session("cut")["status"] == "forwarding"
        # a lost connection is not a crash: the same forwarder reconnected
        assert alive(forwarder) and ssh_daemon.actor_pids(session)["forwarder"] == forwarder
    finally:
        echo.close()


def _descendants(pids: list[int]) -> list[int]:
    from remote.infra import children_of

    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children_of(pid))
    return found
