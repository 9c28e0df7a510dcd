"""Crash anywhere, resume by itself: kill -9 one actor of a session in the middle of a cycle that
transfers many files; the session must converge on its own, nothing lost, no partial or temporary
files left behind. Then kill -9 the daemon: sessions come back as they were and keep syncing."""

from __future__ import annotations

import os
import signal

import pytest

from mutagen_actors.actors.syncsession.transitioner import TEST_HOLD_VARIABLE
from mutagen_actors.wire.messages import sync as sm

from .conftest import Sync, leftovers, module_daemon, tree, wait_same, wait_until, write

SMALL_FILES = 2000
BIG_FILES = 3
BIG_SIZE = 3 * 1024 * 1024


def populate(root: str) -> dict:
    for i in range(SMALL_FILES):
        write(root, f"d{i % 20}/f{i}.txt", f"small file {i}\n" * 40)
    for i in range(BIG_FILES):
        write(root, f"big/b{i}.bin", os.urandom(BIG_SIZE))
    return tree(root)


# When to pull the trigger, per actor: a status of the first cycle during which it is busy.
MOMENTS = {
    "alpha": ("staging-beta",),        # the sender, while it supplies content
    "beta": ("staging-beta",),         # the receiver, while it stages
    "stager": ("staging-beta",),
    "transitioner": ("transitioning",),
    "reconciler": ("staging-beta", "transitioning"),
}


@pytest.fixture(scope="module")
def held_sync():
    """A daemon whose transitioner holds each job 1 s after the endpoints answered
    (``transitioner.TEST_HOLD_VARIABLE``): a transition of placed files takes milliseconds, too
    short for a status poll to see "transitioning"; held, the kill lands after beta applied the
    changes and before the reconciler learns it (the next cycle must find them in place)."""
    yield from module_daemon({TEST_HOLD_VARIABLE: "1"})


@pytest.mark.parametrize("actor", list(MOMENTS))
def test_kill_9_of_an_actor_during_a_transfer_converges(held_sync: Sync, roots, actor):
    sync = held_sync
    alpha, beta = roots
    original = populate(alpha)
    identifier = sync.create(alpha, beta, paused=True)
    sync.command(sm.SyncResume, identifier)
    state = sync.wait_status(identifier, *MOMENTS[actor], timeout=60)
    assert state.successful_cycles == 0
    os.kill(sync.actor_pid(identifier, actor), signal.SIGKILL)

    wait_same(alpha, beta, timeout=90)
    assert tree(alpha) == original  # nothing lost on the sending side
    assert not leftovers(alpha, beta)
    state = sync.wait_status(identifier, "watching", timeout=30)
    assert state.alpha.files == state.beta.files == SMALL_FILES + BIG_FILES
    write(alpha, "after-crash.txt", "still syncing")
    wait_until(lambda: "after-crash.txt" in tree(beta), 30, what="sync after the crash")
    sync.command(sm.SyncTerminate, identifier)


def test_kill_9_of_the_daemon_brings_sessions_back(sync: Sync, roots, tmp_path):
    alpha, beta = roots
    write(alpha, "one.txt", "one")
    running = sync.create(alpha, beta, name="running", labels={"team": "x"})
    wait_same(alpha, beta)
    paused_alpha, paused_beta = str(tmp_path / "pa"), str(tmp_path / "pb")
    write(paused_alpha, "p.txt", "p")
    paused = sync.create(paused_alpha, paused_beta, paused=True)

    os.kill(sync.request(__import__("mutagen_actors.wire.messages.control",
                                    fromlist=["x"]).GetDaemonStatus()).pid, signal.SIGKILL)
    sync.daemon.start()

    states = {s.identifier: s for s in sync.list()}
    assert set(states) == {running, paused}
    assert states[running].name == "running" and states[running].labels == {"team": "x"}
    assert states[paused].paused and not states[running].paused
    write(alpha, "two.txt", "two")
    wait_until(lambda: "two.txt" in tree(beta), 30, what="sync after the daemon restart")
    assert not os.path.exists(os.path.join(paused_beta, "p.txt"))  # paused stays paused
