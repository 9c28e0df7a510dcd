"""A sync session halted by a safety check stays halted across a daemon crash (``kill -9``) and
restart: ``list`` shows the same status and last error, nothing is synchronized, a resume that
fixes nothing halts it again (the reconciler re-detects the condition) and a resume after fixing
continues."""

import json
import os
import signal

from mutagen_actors.wire.messages import sync as sm

from .conftest import processes_of, tree, wait_same, wait_until, write


def kill_daemon(sync) -> None:
    """SIGKILL the daemon and wait for it and every actor it left to be gone (orphaned actors
    exit by themselves once their supervisor is gone)."""
    pids = processes_of(sync.daemon.data_dir)
    pid = sync.daemon.status()["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not [p for p in processes_of(sync.daemon.data_dir) if p in pids], 15,
               what="the daemon and its actors to be gone")


def test_root_emptied_halt_survives_a_daemon_kill_and_resume_continues(sync, roots):
    alpha, beta = roots
    write(alpha, "one.txt", "one")
    write(alpha, "sub/two.txt", "two")
    identifier = sync.create(alpha, beta)
    wait_same(alpha, beta)

    os.rename(alpha, alpha + ".old")  # empty alpha at once
    os.mkdir(alpha)
    halted = sync.wait_status(identifier, "halted-on-root-emptied", timeout=30)

    kill_daemon(sync)
    # While the daemon is down alpha gets one new file: the root no longer looks emptied, so a
    # fresh start would take the wipe of everything else for deletions to propagate.
    write(alpha, "while-down.txt", "x")
    sync.daemon.start()

    state = sync.state(identifier)
    assert (state.status, state.last_error) == (halted.status, halted.last_error)
    assert not state.paused and not state.alpha.connected
    assert "not currently able" in sync.refused(sm.SyncFlush(sm.Selection([identifier])))
    restored = sync.daemon.status()["sessions"][0]
    assert restored["status"] == "halted" and not [a for a in restored["actors"] if a["pid"]]
    assert sorted(tree(beta)) == ["one.txt", "sub", "sub/two.txt"]  # nothing deleted

    # Resume without fixing: the reconciler finds the root still emptied and halts again.
    os.unlink(os.path.join(alpha, "while-down.txt"))
    sync.command(sm.SyncResume, identifier)
    sync.wait_status(identifier, "halted-on-root-emptied", timeout=30)
    assert tree(beta)["one.txt"][1] == b"one"

    # Fix it and resume: synchronization continues (and the halt is no longer on record).
    write(alpha, "one.txt", "one")
    write(alpha, "sub/two.txt", "two")
    sync.command(sm.SyncResume, identifier)
    sync.wait_status(identifier, "watching", timeout=30)
    write(alpha, "after.txt", "after resume")
    wait_until(lambda: "after.txt" in tree(beta), 30, what="sync after resume")

    kill_daemon(sync)
    sync.daemon.start()
    sync.wait_status(identifier, "watching", timeout=30)
    write(alpha, "after-restart.txt", "again")
    wait_until(lambda: "after-restart.txt" in tree(beta), 30, what="sync after the restart")


def recorded_halt(sync, identifier: str) -> str:
    """The halt status in the session's record on disk."""
    with open(os.path.join(sync.daemon.data_dir, "sessions", f"{identifier}.json"), "rb") as f:
        return json.load(f).get("halted", "")


def test_safety_halt_is_recorded_without_any_command_asking(sync, roots):
    alpha, beta = roots
    write(alpha, "one.txt", "one")
    write(alpha, "two.txt", "two")  # (a root of fewer than two entries may be emptied)
    identifier = sync.create(alpha, beta)
    wait_same(alpha, beta)
    os.unlink(os.path.join(alpha, "one.txt"))
    os.unlink(os.path.join(alpha, "two.txt"))
    # No list, no flush: the daemon's own check puts the halt on record.
    wait_until(lambda: recorded_halt(sync, identifier) == "halted-on-root-emptied", 30,
               interval=0.2, what="the halt to be recorded")
    kill_daemon(sync)
    write(alpha, "while-down.txt", "x")
    sync.daemon.start()
    assert sync.state(identifier).status == "halted-on-root-emptied"
    assert sorted(tree(beta)) == ["one.txt", "two.txt"]
