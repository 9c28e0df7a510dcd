"""Supervision through the real CLI and real processes: crashes restart only what crashed;
a child that cannot start halts its session, never the daemon."""

from __future__ import annotations

import os
import signal
import time

from .conftest import alive, wait_until


def _pids(session: dict) -> dict:
    return {a["id"]: a["pid"] for a in session["actors"]}


def test_kill_9_of_any_actor_restarts_it_within_a_second_and_nothing_else(daemon):
    daemon_pid = daemon.start()
    first = daemon.create_session(3)
    other = daemon.create_session(2)
    assert first["status"] == "running"
    before, other_before = _pids(first), _pids(other)
    assert all(before.values()) and len(set(before.values())) == 3

    for victim in ("actor-1", "actor-3"):
        killed_pid = before[victim]
        killed_at = time.time()
        os.kill(killed_pid, signal.SIGKILL)

        def restarted():
            actor = next(a for a in daemon.session(first["id"])["actors"] if a["id"] == victim)
            return actor if actor["state"] == "running" and actor["pid"] != killed_pid else None

        actor = wait_until(restarted, 10, what=f"{victim} to be restarted")
        assert actor["ready_at"] - killed_at < 1.0, "restarted later than 1 s after kill -9"
        assert actor["last_exit"] == "killed by SIGKILL"
        assert alive(actor["pid"]) and not alive(killed_pid)
        after = _pids(daemon.session(first["id"]))
        assert {k: v for k, v in after.items() if k != victim} == \
               {k: v for k, v in before.items() if k != victim}
        before = after

    status = daemon.status()
    assert status["pid"] == daemon_pid
    assert _pids(daemon.session(other["id"])) == other_before
    restarts = {a["id"]: a["restarts"] for a in daemon.session(first["id"])["actors"]}
    assert restarts == {"actor-1": 1, "actor-2": 0, "actor-3": 1}


def test_actor_crashing_on_every_start_halts_its_session_and_the_daemon_stays_up(daemon):
    daemon_pid = daemon.start()
    healthy = daemon.create_session(1)
    started = time.monotonic()
    crashing = daemon.create_session(2, "--crash-on-start", "--name", "crashy")
    assert time.monotonic() - started < 15

    assert crashing["status"] == "halted"
    assert "exceeded the restart budget" in crashing["halt_reason"]
    assert "on_start raised RuntimeError: crash on start requested" in crashing["halt_reason"]
    assert all(a["pid"] == 0 for a in crashing["actors"])

    # The daemon and the other session carry on, and say so through the CLI.
    status = daemon.status()
    assert status["pid"] == daemon_pid
    assert daemon.session(healthy["id"])["status"] == "running"
    assert _pids(daemon.session(healthy["id"])) == _pids(healthy)
    text = daemon.cli("daemon", "status", check=True).stdout
    assert "Status: Halted" in text and "exceeded the restart budget" in text
    daemon.wait_log(lambda e: e.get("event") == "session halted"
                    and e.get("session") == crashing["id"], what="halt logged")

    # A halted session stays halted (no restart loop): nothing of it is running a moment later.
    assert not [a for a in daemon.session(crashing["id"])["actors"] if a["pid"]]
    result = daemon.cli("daemon", "debug-session", "terminate", "crashy", check=True)
    assert "Terminated" in result.stdout
    assert crashing["id"] not in [s["id"] for s in daemon.status()["sessions"]]


def test_sigterm_of_an_actor_stops_it_cleanly_and_it_is_restarted(daemon):
    daemon.start()
    session = daemon.create_session(1)
    pid = session["actors"][0]["pid"]
    os.kill(pid, signal.SIGTERM)

    def restarted():
        actor = daemon.session(session["id"])["actors"][0]
        return actor if actor["state"] == "running" and actor["pid"] != pid else None

    actor = wait_until(restarted, 10, what="restart after SIGTERM")
    assert actor["last_exit"] == "exited with status 143"
    stopping = daemon.wait_log(lambda e: e["event"] == "actor stopped" and e.get("status") == 143)
    assert stopping  # on_stop ran and the actor said goodbye: an orderly exit
    assert not os.path.exists(session["actors"][0]["mailbox"].removeprefix("ipc://"))


def test_hung_actor_is_killed_by_the_heartbeat_and_restarted(daemon):
    daemon_env = daemon.env
    daemon_env["MUTAGEN_ACTORS_HEARTBEAT_INTERVAL"] = "0.2"
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "mutagen_actors.cli", "daemon", "start"],
                   env=daemon_env, check=True, capture_output=True, timeout=60)
    session = daemon.create_session(2)
    hung, other = session["actors"][0]["pid"], session["actors"][1]["pid"]
    stopped_at = time.time()
    os.kill(hung, signal.SIGSTOP)

    def restarted():
        actor = daemon.session(session["id"])["actors"][0]
        return actor if actor["state"] == "running" and actor["pid"] != hung else None

    actor = wait_until(restarted, 10, what="hung actor to be replaced")
    assert actor["last_exit"] == "killed by SIGKILL"
    assert 0.6 <= actor["ready_at"] - stopped_at < 3.0
    assert daemon.session(session["id"])["actors"][1]["pid"] == other
    assert daemon.wait_log(lambda e: e["event"] == "actor unresponsive; killing it")


def test_kill_9_of_the_fork_server_restarts_the_actors_under_a_new_one(daemon):
    daemon_pid = daemon.start()
    session = daemon.create_session(2)
    old_actors = set(_pids(session).values())
    old_server = daemon.status()["forkserver_pid"]
    os.kill(old_server, signal.SIGKILL)

    def all_replaced():
        now = daemon.session(session["id"])
        pids = set(_pids(now).values())
        running = all(a["state"] == "running" for a in now["actors"])
        return now if running and pids.isdisjoint(old_actors) and 0 not in pids else None

    now = wait_until(all_replaced, 15, what="actors restarted under a new fork server")
    assert now["status"] == "running"
    assert {a["last_exit"] for a in now["actors"]} == {
        "killed by SIGKILL (killed by the supervisor: its fork server died)"}
    assert not any(alive(p) for p in old_actors)  # no orphan of the old fork server
    status = daemon.status()
    assert status["pid"] == daemon_pid
    assert status["forkserver_pid"] not in (0, old_server) and alive(status["forkserver_pid"])
