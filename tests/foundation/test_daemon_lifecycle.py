"""Daemon lifecycle through the real CLI: start, autostart, stale lock/socket healing, hung
daemon, graceful stop without orphans."""

from __future__ import annotations

import os
import signal
import stat
import time

import pytest

from mutagen_actors.supervisor import lock

from .conftest import alive, processes_of, wait_until

AUTOSTART_LINE = ('Started mutagen-actors daemon in background '
                  '(terminate with "mutagen-actors daemon stop")')


def test_daemon_start_twice_gives_one_daemon(daemon):
    first = daemon.cli("daemon", "start", check=True)
    assert first.stdout.startswith("Daemon started (pid ")
    second = daemon.cli("daemon", "start", check=True)
    pid = daemon.status()["pid"]
    assert second.stdout.strip() == f"Daemon already running (pid {pid})"
    assert lock.holder(os.path.join(daemon.data_dir, "daemon", "daemon.lock")) == pid
    # A foreground `daemon run` next to it refuses, with a one-line reason.
    refused = daemon.cli("daemon", "run")
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: another daemon is already running (pid ")
    assert len(refused.stderr.strip().splitlines()) == 1
    assert [p for p in processes_of(daemon.data_dir) if p == pid] == [pid]
    assert daemon.status()["pid"] == pid


def test_command_needing_the_daemon_autostarts_it_and_says_so_once(daemon):
    result = daemon.cli("daemon", "debug-session", "list", check=True)
    assert result.stderr.strip() == AUTOSTART_LINE
    assert result.stdout.strip() == "No sessions"
    again = daemon.cli("daemon", "debug-session", "list", check=True)
    assert again.stderr == ""
    disabled = daemon.cli("daemon", "stop", check=True)
    assert disabled.stdout.strip() == "Daemon stopped"
    env_off = dict(daemon.env, MUTAGEN_ACTORS_DISABLE_AUTOSTART="1")
    import subprocess
    import sys

    refused = subprocess.run([sys.executable, "-m", "mutagen_actors.cli", "daemon",
                              "debug-session", "list"], env=env_off, capture_output=True,
                             text=True, timeout=30)
    assert refused.returncode == 1 and "autostart is disabled" in refused.stderr


def test_kill_9_of_the_daemon_then_any_command_gets_a_fresh_daemon(daemon):
    old_pid = daemon.start()
    session = daemon.create_session(2)
    old_actors = [a["pid"] for a in session["actors"]]
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: not alive(old_pid), 5, what="daemon to die")
    # Stale socket file is still there; the lock file too (but unlocked).
    assert os.path.exists(daemon.socket)
    # The old actors notice their supervisor is gone and exit by themselves.
    wait_until(lambda: not any(alive(p) for p in old_actors), 5, what="orphaned actors to exit")

    result = daemon.cli("daemon", "debug-session", "list", "--json", check=True)
    assert result.stderr.strip() == AUTOSTART_LINE
    status = daemon.status()
    assert status["pid"] != old_pid and alive(status["pid"])
    # The persisted session was resumed by the fresh daemon, with new actor processes.
    resumed = daemon.session(session["id"])
    wait_until(lambda: daemon.session(session["id"])["status"] == "running", 10,
               what="resumed session running")
    assert {a["pid"] for a in daemon.session(session["id"])["actors"]}.isdisjoint(old_actors)
    assert resumed["kind"] == "debug"


def test_sigstopped_daemon_makes_commands_fail_clearly_within_5_seconds(daemon):
    pid = daemon.start()
    os.kill(pid, signal.SIGSTOP)
    try:
        for command in (("daemon", "status"), ("daemon", "debug-session", "list"),
                        ("daemon", "stop")):
            started = time.monotonic()
            result = daemon.cli(*command, timeout=30)
            elapsed = time.monotonic() - started
            assert elapsed < 5.0, (command, elapsed)
            assert result.returncode == 1
            assert result.stderr.startswith("Error: daemon did not answer within 3 s "
                                            "(is it stopped or hung?"), result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
    finally:
        os.kill(pid, signal.SIGCONT)
    assert daemon.status()["pid"] == pid  # it carries on once continued


def test_daemon_stop_stops_everything_and_leaves_no_orphans(daemon):
    daemon_pid = daemon.start()
    daemon.create_session(3)
    daemon.create_session(1)
    status = daemon.status()
    recorded = {daemon_pid, status["forkserver_pid"]}
    recorded |= {a["pid"] for s in status["sessions"] for a in s["actors"]}
    assert len(recorded) == 6 and all(alive(p) for p in recorded)
    everything = set(processes_of(daemon.data_dir))
    assert recorded <= everything

    result = daemon.cli("daemon", "stop", check=True)
    assert result.stdout.strip() == "Daemon stopped"
    # `daemon stop` returns once the daemon has exited; its children are gone by then.
    assert [p for p in recorded if alive(p)] == []
    assert processes_of(daemon.data_dir) == []
    assert not os.path.exists(daemon.socket)
    assert os.listdir(os.path.join(daemon.data_dir, "daemon", "mailboxes")) == []
    log = daemon.log_lines()
    assert any(e["event"] == "daemon stopped" for e in log)
    again = daemon.cli("daemon", "stop", check=True)
    assert again.stdout.strip() == "Daemon is not running"
    not_running = daemon.cli("daemon", "status")
    assert (not_running.returncode, not_running.stdout.strip()) == (3, "Daemon: not running")


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_daemon_gracefully(daemon, signal_number):
    pid = daemon.start()
    session = daemon.create_session(2)
    actors = [a["pid"] for a in session["actors"]]
    os.kill(pid, signal_number)
    # A process in the middle of exiting has no environment any more but is not a zombie yet:
    # wait for both views (with no resource tracker, the last actor's exit ends the tree).
    wait_until(lambda: not processes_of(daemon.data_dir)
               and not any(alive(p) for p in actors + [pid]), 20, what="everything to stop")
    assert not any(alive(p) for p in actors + [pid])
    stops = [e for e in daemon.log_lines() if e["event"] == "actor stopping"]
    assert {e["actor"] for e in stops} == {"actor-1", "actor-2"}
    assert all(e["reason"] == "Stop requested" for e in stops)


def test_data_directory_and_socket_are_private(daemon):
    daemon.start()
    mode = lambda path: stat.S_IMODE(os.stat(path).st_mode)  # noqa: E731
    assert mode(daemon.data_dir) == 0o700
    assert mode(os.path.join(daemon.data_dir, "daemon")) == 0o700
    assert mode(daemon.socket) == 0o600
    assert stat.S_ISSOCK(os.stat(daemon.socket).st_mode)
    session = daemon.create_session(1)
    mailbox = session["actors"][0]["mailbox"].removeprefix("ipc://")
    assert mode(mailbox) == 0o600
    assert mode(os.path.dirname(mailbox)) == 0o700


def test_concurrent_daemon_starts_give_one_daemon(daemon):
    import subprocess
    import sys

    starts = [subprocess.Popen([sys.executable, "-m", "mutagen_actors.cli", "daemon", "start"],
                               env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=60) for p in starts]
    assert [p.returncode for p in starts] == [0, 0, 0], outputs
    pid = daemon.status()["pid"]
    assert all(f"(pid {pid})" in out for out, _err in outputs), outputs

    def command_line(pid):
        with open(f"/proc/{pid}/cmdline") as stream:
            return stream.read().split("\0")

    def live_daemons():
        found = []
        for process in processes_of(daemon.data_dir):
            try:
                if {"daemon", "run"} <= set(command_line(process)):
                    found.append(process)
            except OSError:
                pass  # exited meanwhile
        return found

    # A start that lost the race may still be booting when its CLI already sees the winner
    # answering; it finds the lock held and exits by itself: one daemon is what remains.
    wait_until(lambda: live_daemons() == [pid], 20, interval=0.05,
               what="the daemons that lost the race to exit")
    assert daemon.status()["pid"] == pid
