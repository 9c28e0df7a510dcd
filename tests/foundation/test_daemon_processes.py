"""The daemon's process tree holds the daemon, its fork server and the actors: nothing else
(no multiprocessing resource tracker: nothing here needs one)."""

from __future__ import annotations

from .conftest import alive, processes_of, wait_until


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            return stream.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_no_process_beyond_daemon_fork_server_and_actors(daemon):
    daemon_pid = daemon.start()
    daemon.create_session(2)
    status = daemon.status()
    recorded = {daemon_pid, status["forkserver_pid"]}
    recorded |= {a["pid"] for s in status["sessions"] for a in s["actors"]}
    assert len(recorded) == 4 and all(alive(pid) for pid in recorded)
    everything = wait_until(lambda: set(processes_of(daemon.data_dir)) >= recorded
                            and set(processes_of(daemon.data_dir)), 10, what="the process tree")
    extra = {pid: _cmdline(pid) for pid in everything - recorded}
    assert extra == {}
    assert not any("resource_tracker" in _cmdline(pid) for pid in everything)
    daemon.cli("daemon", "stop", check=True)
    assert processes_of(daemon.data_dir) == []
