"""A halted session stays halted across a daemon crash (``kill -9``) and restart: the same status
and reason, its actors not started; persisted records and the supervisor hooks, through a real
daemon (debug and forward sessions halted by the restart budget). (Sync sessions halted by a safety check: tests/syncsession/test_halt_restart.py.)"""

from __future__ import annotations

import os
import signal
import socket

import msgspec
import pytest

from foundation.conftest import alive, daemon, wait_until  # noqa: F401
from forwardsession.conftest import forward_daemon  # noqa: F401
from mutagen_actors.supervisor import persistence
from mutagen_actors.supervisor.persistence import SessionRecord


def kill_daemon(handle) -> None:
    pid = handle.status()["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), 10, what="the daemon to die")


def test_budget_halt_survives_a_daemon_kill(daemon):  # noqa: F811
    daemon.start()
    crashing = daemon.create_session(2, "--crash-on-start", "--name", "crashy")
    healthy = daemon.create_session(1, "--name", "healthy")
    assert crashing["status"] == "halted"
    reason = crashing["halt_reason"]
    assert "exceeded the restart budget" in reason

    def exits() -> int:
        return len([e for e in daemon.log_lines() if e.get("event") == "actor exited"
                    and e.get("session") == crashing["id"]])

    exits_before = exits()
    assert exits_before > 0
    kill_daemon(daemon)
    daemon.start()
    daemon.wait_log(lambda e: e.get("event") == "session restored halted"
                    and e.get("session") == crashing["id"], what="the halt restored")

    restored = daemon.session(crashing["id"])
    assert restored["status"] == "halted"
    assert restored["halt_reason"] == reason
    assert all(actor["pid"] == 0 for actor in restored["actors"])
    assert [a["last_exit"] for a in restored["actors"]] == [a["last_exit"] for a in crashing["actors"]]
    # The healthy session was resumed as usual.
    running = wait_until(lambda: (s := daemon.session(healthy["id"]))["status"] == "running" and s,
                         15, what="the healthy session to run")
    assert all(actor["pid"] for actor in running["actors"])
    text = daemon.cli("daemon", "status", check=True).stdout
    assert "Status: Halted" in text and "exceeded the restart budget" in text
    # Still halted: nothing of it started (or crashed) since the restart.
    assert not [a for a in daemon.session(crashing["id"])["actors"] if a["pid"]]
    assert exits() == exits_before


def test_save_halt_keeps_other_fields_and_clears(tmp_path):
    directory = str(tmp_path)
    record = SessionRecord(id="sync_x", name="n", kind="sync", created=1.0, spec={"a": 1})
    persistence.save(directory, record)
    on_disk = persistence.load_all(directory)[0]
    on_disk.paused = True  # changed by someone else, on disk
    persistence.save(directory, on_disk)

    assert persistence.save_halt(directory, record, "halted-on-actor-failure", "budget",
                                 {"actor-1": "exited with status 1"})
    loaded = persistence.load_all(directory)[0]
    assert (loaded.halted, loaded.halt_reason, loaded.halt_exits, loaded.paused, loaded.spec) == (
        "halted-on-actor-failure", "budget", {"actor-1": "exited with status 1"}, True, {"a": 1})
    assert record.halted == "halted-on-actor-failure"

    assert persistence.save_halt(directory, record, "")
    loaded = persistence.load_all(directory)[0]
    assert (loaded.halted, loaded.halt_reason, loaded.halt_exits) == ("", "", {})

    persistence.delete(directory, "sync_x")
    assert not persistence.save_halt(directory, record, "halted-on-actor-failure", "late")
    assert os.listdir(directory) == []


@pytest.mark.parametrize("text", [
    b'{"id":"s","name":"","kind":"debug","created":1.0}',  # written before halts were persisted
    b'{"id":"s","name":"","kind":"debug","created":1.0,"halted":"","future":1}',
])
def test_older_and_newer_records_read(tmp_path, text):
    (tmp_path / "s.json").write_bytes(text)
    record = persistence.load_all(str(tmp_path))[0]
    assert (record.halted, record.halt_reason, record.halt_exits) == ("", "", {})
    assert msgspec.json.decode(msgspec.json.encode(record), type=SessionRecord) == record


def test_forward_budget_halt_survives_a_daemon_kill(forward_daemon):  # noqa: F811
    from forward.servers import EchoServer
    from forwardsession.conftest import echo_once, free_port, listening

    echo = EchoServer("tcp:127.0.0.1:0")
    port = free_port()
    try:
        identifier = forward_daemon.create(f"tcp:127.0.0.1:{port}", echo.endpoint, "-n", "web",
                                           "--paused")
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            forward_daemon.forward("resume", "web", check=False)
            before = forward_daemon.wait_session(
                "web", lambda s: s["status"] == "halted-on-actor-failure", what="the halt")
            assert "address already in use" in before["lastError"]

            kill_daemon(forward_daemon)
            forward_daemon.start()
            forward_daemon.wait_log(lambda e: e.get("event") == "session restored halted"
                                    and e.get("session") == identifier, what="the halt restored")
            after = forward_daemon.session("web")
            assert (after["status"], after["lastError"]) == (before["status"], before["lastError"])
            assert "Status: Halted due to repeated forwarder failure" in \
                forward_daemon.forward("list").stdout
        assert not listening(port)
        forward_daemon.forward("resume", "web")  # the address is free again
        assert echo_once(f"tcp:127.0.0.1:{port}", b"free")
    finally:
        echo.close()
