"""Crash anywhere, resume by itself, for forwarding sessions (through the real CLI and daemon).

- kill -9 of one session's forwarder: its session supervisor restarts it and the forward works
  again within a second; the daemon, another forwarding session and a sync session keep their
  processes (and the other forward its open connection);
- kill -9 of the daemon: its actors stop by themselves (they watch it), the next ``forward
  list`` starts a daemon that brings every session back as it was: forwarding again, paused
  still paused (its port still closed).
"""

from __future__ import annotations

import os
import signal
import time

from forward.servers import EchoServer
from foundation.conftest import alive, wait_until

from .conftest import connect, echo_once, free_port, listening, recv_exactly


def test_kill_9_of_a_forwarder_is_repaired_within_a_second_and_touches_nobody_else(
        forward_daemon, tmp_path):
    echo = EchoServer("tcp:127.0.0.1:0")
    web_source = f"tcp:127.0.0.1:{free_port()}"
    other_source = f"unix:{os.path.join(forward_daemon.root, 'other.sock')}"
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    alpha.mkdir()
    (alpha / "file.txt").write_text("synced\n")
    try:
        web = forward_daemon.create(web_source, echo.endpoint, "-n", "web")
        other = forward_daemon.create(other_source, echo.endpoint, "-n", "other")
        forward_daemon.cli("sync", "create", str(alpha), str(beta), "-n", "code", check=True)
        wait_until(lambda: (beta / "file.txt").exists(), 30, what="the sync session to sync")
        sync_id = next(s["id"] for s in forward_daemon.status()["sessions"] if s["kind"] == "sync")
        daemon_pid = forward_daemon.status()["pid"]
        before = {identifier: forward_daemon.actor_pids(identifier)
                  for identifier in (web, other, sync_id)}
        assert all(before[sync_id].values()) and len(before[sync_id]) == 5

        with connect(other_source) as held:  # a connection of the other session stays up
            held.sendall(b"before")
            assert recv_exactly(held, 6) == b"before"

            killed_at = time.monotonic()
            os.kill(before[web]["forwarder"], signal.SIGKILL)
            wait_until(lambda: not alive(before[web]["forwarder"]), 5, what="the kill")
            wait_until(lambda: echo_once(web_source, b"again", timeout=1), 5, interval=0.005,
                       what="the forward to work again")
            back_after = time.monotonic() - killed_at
            print(f"forwarding again {back_after * 1000:.0f} ms after kill -9 of the forwarder")
            assert back_after < 1.0, f"forwarding again only after {back_after:.2f} s"

            held.sendall(b"still here")
            assert recv_exactly(held, 10) == b"still here"

        status = forward_daemon.status()
        assert status["pid"] == daemon_pid
        after = {identifier: forward_daemon.actor_pids(identifier)
                 for identifier in (web, other, sync_id)}
        assert after[other] == before[other] and after[sync_id] == before[sync_id]
        assert after[web]["forwarder"] not in (0, before[web]["forwarder"])
        session = forward_daemon.session("web")
        assert session["status"] == "forwarding"
        assert session["lastError"] == "forwarder restarted after it was killed by SIGKILL"
        assert session["totalConnections"] >= 1
        assert forward_daemon.session("other")["lastError"] == ""
    finally:
        echo.close()


def test_kill_9_of_the_daemon_brings_sessions_back(forward_daemon):
    echo = EchoServer("tcp:127.0.0.1:0")
    running_port, paused_port = free_port(), free_port()
    unix_source = f"unix:{os.path.join(forward_daemon.root, 'app.sock')}"
    try:
        running = forward_daemon.create(f"tcp:127.0.0.1:{running_port}", echo.endpoint,
                                        "-n", "running", "-l", "team=x")
        unix = forward_daemon.create(unix_source, echo.endpoint, "-n", "unix")
        paused = forward_daemon.create(f"tcp:127.0.0.1:{paused_port}", echo.endpoint,
                                       "-n", "paused", "--paused")
        assert echo_once(f"tcp:127.0.0.1:{running_port}", b"one")
        daemon_pid = forward_daemon.status()["pid"]
        # both sessions name their child "forwarder": collect the pids, not a merged dict
        actors = [*forward_daemon.actor_pids(running).values(),
                  *forward_daemon.actor_pids(unix).values()]

        # the unix forwarder dies with the daemon without cleaning up: its socket file stays
        unix_forwarder = forward_daemon.actor_pids(unix)["forwarder"]
        os.kill(unix_forwarder, signal.SIGSTOP)
        os.kill(daemon_pid, signal.SIGKILL)
        os.kill(unix_forwarder, signal.SIGKILL)
        wait_until(lambda: not alive(daemon_pid), 5, what="the daemon to die")
        wait_until(lambda: not any(alive(pid) for pid in actors), 10,
                   what="the orphaned forwarders to stop by themselves")
        assert os.path.exists(unix_source[5:])
        assert not listening(running_port)

        states = {s["identifier"]: s for s in forward_daemon.sessions()}  # starts a daemon
        assert set(states) == {running, unix, paused}
        assert forward_daemon.status()["pid"] != daemon_pid
        assert (states[running]["name"], states[running]["labels"]) == ("running", {"team": "x"})
        assert states[paused]["paused"] and not states[running]["paused"]
        for name in ("running", "unix"):
            forward_daemon.wait_session(name, lambda s: s["status"] == "forwarding",
                                        what=f"{name} to forward again")
        assert echo_once(f"tcp:127.0.0.1:{running_port}", b"two")
        assert echo_once(unix_source, b"three")  # its stale socket file was reclaimed
        assert not listening(paused_port)  # paused stays paused
        assert forward_daemon.session("paused")["paused"] is True
    finally:
        echo.close()


def test_a_hung_forwarder_does_not_hang_list_or_pause(forward_daemon):
    echo = EchoServer("tcp:127.0.0.1:0")
    port = free_port()
    try:
        identifier = forward_daemon.create(f"tcp:127.0.0.1:{port}", echo.endpoint, "-n", "hung")
        forwarder = forward_daemon.actor_pids(identifier)["forwarder"]
        os.kill(forwarder, signal.SIGSTOP)  # alive, holding its port, answering nothing

        started = time.monotonic()
        session = forward_daemon.session("hung")
        assert time.monotonic() - started < 5
        assert (session["status"], session["paused"]) == ("forwarding", False)

        started = time.monotonic()
        forward_daemon.forward("pause", "hung", timeout=30)
        took = time.monotonic() - started
        print(f"pause of a SIGSTOPped forwarder answered in {took:.1f} s")
        assert took < 10, "pause escalates to signals on a hung forwarder"
        assert not alive(forwarder) and not listening(port)
        assert forward_daemon.session("hung")["paused"] is True
    finally:
        echo.close()
