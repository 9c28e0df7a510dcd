"""``mutagen-actors forward ...`` end to end: the real CLI, a real daemon, real servers.

What a user observes: after create, an echo server and an HTTP server answer through the forward
(tcp->tcp and unix->tcp); list/--long/--json show the connections and the bytes each way; pause
closes the listening port and resume opens it again; terminate removes the session (and its unix
socket file). Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time

from forward.servers import EchoServer, http_server

from .conftest import (
    connect,
    echo_once,
    free_port,
    http_get,
    listening,
    recv_exactly,
)

D = "-" * 80


def test_tcp_forward_lifecycle_with_statistics(forward_daemon):
    echo = EchoServer("tcp:127.0.0.1:0")
    port = free_port()
    source = f"tcp:127.0.0.1:{port}"
    try:
        identifier = forward_daemon.create(source, echo.endpoint, "--name", "echo", "-l",
                                           "team=web,tier")
        assert len(identifier) == len("fwrd_") + 43

        # one connection held open: 1000 bytes out, the same 1000 bytes back
        payload = os.urandom(1000)
        with connect(source) as held:
            held.sendall(payload)
            assert recv_exactly(held, len(payload)) == payload
            session = forward_daemon.session("echo")
            assert (session["identifier"], session["name"], session["labels"],
                    session["paused"], session["status"]) == \
                (identifier, "echo", {"team": "web", "tier": ""}, False, "forwarding")
            assert (session["openConnections"], session["totalConnections"],
                    session["totalOutboundData"], session["totalInboundData"]) == (1, 1, 1000, 1000)
            assert session["source"] == {"protocol": "local", "endpoint": source,
                                         "connected": True}
            assert session["destination"] == {"protocol": "local", "endpoint": echo.endpoint,
                                              "connected": True}
            assert session["lastError"] == "" and session["creationTime"].endswith("Z")
            human = forward_daemon.forward("list").stdout
            assert human == (f"{D}\nName: echo\nIdentifier: {identifier}\n"
                             f"Source:\n\tURL: {source}\n\tConnected: Yes\n"
                             f"Destination:\n\tURL: {echo.endpoint}\n\tConnected: Yes\n"
                             "Status: Forwarding\n"
                             "Connections: 1 open, 1 total, 1.0 kB outbound, 1.0 kB inbound\n"
                             f"{D}\n")

        # a second, short connection; the first one ends
        assert echo_once(source, b"x" * 24)
        session = forward_daemon.wait_session("echo", lambda s: s["openConnections"] == 0,
                                              what="both connections to end")
        assert (session["totalConnections"], session["totalOutboundData"],
                session["totalInboundData"]) == (2, 1024, 1024)
        long = forward_daemon.forward("list", "--long", identifier).stdout
        assert "Labels:\n\tteam: web\n\ttier: <empty>\n" in long
        assert ("Source:\n\tURL: " + source + "\n\tConfiguration:\n"
                "\t\tSocket overwrite mode: Default (Leave)\n\t\tSocket owner: Default\n"
                "\t\tSocket group: Default\n\t\tSocket permission mode: Default (0600)\n"
                "\tConnected: Yes\n") in long
        assert "Connections: 0 open, 2 total, 1.0 kB outbound, 1.0 kB inbound\n" in long
        for selector in ((identifier,), ("echo",), ("--label-selector", "team in (web),tier")):
            assert [s["identifier"] for s in forward_daemon.sessions(*selector)] == [identifier]
        assert forward_daemon.sessions("--label-selector", "team!=web") == []
        missing = forward_daemon.forward("list", "nope", check=False)
        assert (missing.returncode, missing.stderr) == \
            (1, 'Error: specification "nope" did not match any sessions\n')

        # pause closes the port (and says so); resume listens again; totals carry on
        paused = forward_daemon.forward("pause", "echo")
        assert f"Pausing session {identifier}..." in paused.stderr and paused.stdout == ""
        assert not listening(port)
        session = forward_daemon.session("echo")
        assert (session["paused"], session["source"]["connected"]) == (True, False)
        assert "Status: [Paused]\n" in forward_daemon.forward("list").stdout
        assert "Connections:" not in forward_daemon.forward("list").stdout
        forward_daemon.forward("resume", "--label-selector", "team=web")
        assert echo_once(source, b"back")  # resume answered once it listens
        session = forward_daemon.session("echo")
        assert (session["paused"], session["status"], session["totalConnections"]) == \
            (False, "forwarding", 3)

        # terminate: the session is gone and the port closed
        terminated = forward_daemon.forward("terminate", "echo")
        assert f"Terminating session {identifier}..." in terminated.stderr
        assert not listening(port)
        assert forward_daemon.forward("list").stdout == f"{D}\nNo forwarding sessions found\n{D}\n"
        assert forward_daemon.records() == []
    finally:
        echo.close()


def test_http_through_tcp_and_unix_sources(forward_daemon):
    socket_path = os.path.join(forward_daemon.root, "web.sock")
    tcp_source = f"tcp:127.0.0.1:{free_port()}"
    with http_server("tcp") as web:
        forward_daemon.create(tcp_source, web, "-n", "tcp")
        forward_daemon.create(f"unix:{socket_path}", web, "-n", "unix",
                              "--socket-permission-mode", "0660")
        assert http_get(tcp_source, "/a") == (200, b"hello from /a" * 1000)
        assert http_get(f"unix:{socket_path}", "/b") == (200, b"hello from /b" * 1000)
        assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o660
        assert stat.S_ISSOCK(os.stat(socket_path).st_mode)
        session = forward_daemon.wait_session("unix", lambda s: s["openConnections"] == 0)
        assert session["source"]["socket"] == {"permissionMode": 0o660}
        assert session["totalConnections"] == 1
        assert session["totalInboundData"] > 13000 > session["totalOutboundData"] > 0
        long = forward_daemon.forward("list", "-l", "unix").stdout
        assert "\t\tSocket permission mode: 0660\n" in long

        # a socket file left by someone else: 'leave' refuses, 'overwrite' replaces it
        other = os.path.join(forward_daemon.root, "other.sock")
        with open(other, "w"):
            pass
        refused = forward_daemon.forward("create", f"unix:{other}", web, check=False)
        assert refused.returncode == 1
        assert refused.stderr.splitlines()[-1] == (
            f"Error: cannot listen on unix:{other}: {other} already exists (socket overwrite "
            "mode is 'leave'; use 'overwrite' to replace it)")
        forward_daemon.create(f"unix:{other}", web, "--socket-overwrite-mode-source", "overwrite")
        assert http_get(f"unix:{other}", "/c")[0] == 200

        forward_daemon.forward("terminate", "unix")
        assert not os.path.exists(socket_path), "terminate removes the listener's socket file"
        assert http_get(tcp_source, "/still")[0] == 200


def test_monitor_prints_the_header_then_status_lines(forward_daemon):
    echo = EchoServer("tcp:127.0.0.1:0")
    source = f"tcp:127.0.0.1:{free_port()}"
    forward_daemon.create(source, echo.endpoint, "-n", "mon")
    process = subprocess.Popen([sys.executable, "-m", "mutagen_actors.cli", "forward", "monitor",
                                "mon"], env=forward_daemon.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        lines = []

        def read_until(prefix: str) -> str:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                line = process.stdout.readline()
                assert line, process.stderr.read()
                lines.append(line.rstrip("\n"))
                if line.startswith(prefix):
                    return line.rstrip("\n")
            raise AssertionError(f"no line starting with {prefix!r} in {lines}")

        first = read_until("Status: ")
        assert lines[0] == "Name: mon" and lines[1].startswith("Identifier: fwrd_")
        assert lines[2:7] == ["Source:", f"\tURL: {source}", "Destination:",
                              f"\tURL: {echo.endpoint}", first]
        assert first == "Status: Forwarding: 0 open, 0 total, 0 B outbound, 0 B inbound"
        assert echo_once(source, b"12345")
        assert read_until("Status: Forwarding: 0 open, 1 total, 5 B") == \
            "Status: Forwarding: 0 open, 1 total, 5 B outbound, 5 B inbound"
        forward_daemon.forward("pause", "mon")
        read_until("Status: [Paused]")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()
        echo.close()


def test_bad_input_creates_nothing_and_leaves_sessions_alone(forward_daemon):
    echo = EchoServer("tcp:127.0.0.1:0")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    port = free_port()
    try:
        existing = forward_daemon.create(f"tcp:127.0.0.1:{port}", echo.endpoint, "-n", "keep")
        long_path = "/tmp/" + "x" * 120 + ".sock"
        cases = [
            ((f"tcp:127.0.0.1:{taken}", echo.endpoint),
             f"Error: cannot listen on tcp:127.0.0.1:{taken}: address already in use"),
            ((f"tcp:127.0.0.1:{port}", echo.endpoint),
             f"Error: cannot listen on tcp:127.0.0.1:{port}: address already in use"),
            (("tcp:127.0.0.1:70000", echo.endpoint),
             "Error: source: invalid forwarding endpoint 'tcp:127.0.0.1:70000': port '70000'"),
            (("tcp:127.0.0.1:8080", "udp:127.0.0.1:53"), "Error: destination: invalid URL"),
            (("nonsense", echo.endpoint), "Error: source: invalid URL 'nonsense'"),
            ((f"unix:{long_path}", echo.endpoint), "Error: source: unix socket path too long"),
            (("me@box.invalid:tcp:localhost:8080", echo.endpoint),
             "Error: unable to connect to box.invalid:22"),
            (("tcp:127.0.0.1:8080", "docker://box:unix:relative.sock"),
             "Error: destination: invalid forwarding endpoint 'unix:relative.sock': a remote "
             "unix socket path must be absolute"),
            (("tcp:127.0.0.1:8080", echo.endpoint, "--socket-permission-mode", "0999"),
             "Error: --socket-permission-mode: invalid socket permission mode '0999'"),
            (("tcp:127.0.0.1:8080", echo.endpoint, "-n", "1st"),
             "Error: --name: invalid session name '1st'"),
        ]
        for args, message in cases:
            result = forward_daemon.forward("create", *args, check=False)
            assert result.returncode == 1, (args, result.stdout)
            assert result.stderr.splitlines()[-1].startswith(message), (args, result.stderr)
            assert result.stdout == ""
        assert [s["identifier"] for s in forward_daemon.sessions()] == [existing]
        assert forward_daemon.records() == [existing + ".json"]
        assert forward_daemon.session("keep")["status"] == "forwarding"
        assert echo_once(f"tcp:127.0.0.1:{port}", b"untouched")
        bad_selector = forward_daemon.forward("pause", "--label-selector", "a in (", check=False)
        assert bad_selector.returncode == 1 and "invalid label selector" in bad_selector.stderr
        assert forward_daemon.session("keep")["paused"] is False
    finally:
        holder.close()
        echo.close()


def test_resume_reports_an_address_taken_while_paused(forward_daemon):
    echo = EchoServer("tcp:127.0.0.1:0")
    port = free_port()
    try:
        forward_daemon.create(f"tcp:127.0.0.1:{port}", echo.endpoint, "-n", "web", "--paused")
        assert not listening(port)
        assert forward_daemon.session("web")["paused"] is True
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            result = forward_daemon.forward("resume", "web", check=False)
            assert result.returncode == 1
            assert result.stderr.splitlines()[-1].startswith(
                "Error: unable to resume session fwrd_")
            assert result.stderr.splitlines()[-1].endswith(
                f"cannot listen on tcp:127.0.0.1:{port}: address already in use")
            session = forward_daemon.wait_session(
                "web", lambda s: s["status"] == "halted-on-actor-failure",
                what="the session to halt")
            assert "address already in use" in session["lastError"]
            assert "Status: Halted due to repeated forwarder failure" in \
                forward_daemon.forward("list").stdout
        forward_daemon.forward("resume", "web")  # the address is free again
        assert echo_once(f"tcp:127.0.0.1:{port}", b"free")
    finally:
        echo.close()
