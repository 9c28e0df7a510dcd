"""Hibernation of the job actors: a session's stager and transitioner exit after their idle
delay (1 s here, ``MUTAGEN_ACTORS_IDLE_EXIT``) and are woken by the next cycle that needs them.
What a user sees: the processes are gone, the session stays healthy (`sync list`, `daemon
status`), edits and flushes still propagate, and those exits never count as crashes (kill -9
afterwards is still restarted, within the usual budget)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import time

import pytest
import zmq
import zmq.asyncio

from foundation.conftest import Daemon, alive

from mutagen_actors.supervisor.child_spec import IDLE_EXIT_VARIABLE
from mutagen_actors.supervisor.wake_service import MAILBOX
from mutagen_actors.wire.errors import RemoteError
from mutagen_actors.wire.messages import control
from mutagen_actors.wire.messages import sync as sm
from mutagen_actors.wire.messages.actor import ChildAwake, WakeChild
from mutagen_actors.wire.sockets import DealerClient

from .conftest import Sync, processes_of, tree, wait_same, wait_until, write

IDLE_EXIT = 1.0
JOB_ACTORS = ("stager", "transitioner")


@pytest.fixture(scope="module")
def napping():
    """A daemon whose on-demand actors hibernate after 1 s without work."""
    base = tempfile.mkdtemp(prefix="ma-", dir="/tmp")
    handle = Daemon(os.path.join(base, "data"))
    os.environ[IDLE_EXIT_VARIABLE] = str(IDLE_EXIT)
    try:
        handle.start()
    finally:
        del os.environ[IDLE_EXIT_VARIABLE]
    yield Sync(handle)
    for pid in processes_of(handle.data_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not processes_of(handle.data_dir), 10, what="test processes to die")
    shutil.rmtree(base, ignore_errors=True)


def actors(sync: Sync, identifier: str) -> dict:
    status = sync.request(control.GetDaemonStatus())
    session = next(s for s in status.sessions if s.id == identifier)
    return {a.id: a for a in session.actors}


def session_status(sync: Sync, identifier: str) -> str:
    status = sync.request(control.GetDaemonStatus())
    return next(s for s in status.sessions if s.id == identifier).status


def wait_hibernating(sync: Sync, identifier: str, timeout: float = 15.0) -> dict:
    def asleep():
        now = actors(sync, identifier)
        return now if all(now[a].state == "hibernating" for a in JOB_ACTORS) else None
    return wait_until(asleep, timeout, interval=0.05, what="stager and transitioner to hibernate")


def job_pids_seen(sync: Sync, identifier: str) -> set:
    return {a.pid for name, a in actors(sync, identifier).items() if name in JOB_ACTORS and a.pid}


def test_idle_job_actors_exit_and_the_session_stays_healthy(napping: Sync, roots):
    sync = napping
    alpha, beta = roots
    for i in range(20):
        write(alpha, f"d/f{i}.txt", f"file {i}")
    identifier = sync.create(alpha, beta)
    wait_same(alpha, beta)
    pids = job_pids_seen(sync, identifier)

    asleep = wait_hibernating(sync, identifier)
    for name in JOB_ACTORS:
        assert asleep[name].pid == 0 and asleep[name].restarts == 0
        assert asleep[name].last_exit == "exited normally (idle)"
    assert not [pid for pid in pids if alive(pid)]  # the processes are really gone
    assert session_status(sync, identifier) == "running"
    state = sync.wait_status(identifier, "watching")
    assert state.last_error == "" and state.successful_cycles >= 1
    listing = sync.daemon.cli("sync", "list", "--long", identifier, check=True).stdout
    assert "Watching for changes" in listing and "rror" not in listing
    as_json = json.loads(sync.daemon.cli("sync", "list", "--json", identifier, check=True).stdout)
    assert as_json[0]["status"] == "watching" and as_json[0]["lastError"] == ""

    # An edit wakes them and propagates; so does a flush after they slept again.
    write(alpha, "d/f3.txt", "edited while they slept")
    wait_until(lambda: tree(beta).get("d/f3.txt", ("",))[1:2] == (b"edited while they slept",),
               30, interval=0.02, what="the edit to reach beta")
    wait_hibernating(sync, identifier)
    write(beta, "from-beta.txt", "flushed")
    sync.flush(identifier)
    assert tree(alpha)["from-beta.txt"][1] == b"flushed"
    assert sync.state(identifier).last_error == ""
    sync.command(sm.SyncTerminate, identifier)


def test_hibernation_is_no_crash_and_kill_9_still_restarts(napping: Sync, roots):
    """Three rounds of hibernation (six exits) then five kill -9 within the 30 s window: a
    budget of 5 restarts is not spent by the exits, so the session is restarted, not halted."""
    sync = napping
    alpha, beta = roots
    identifier = sync.create(alpha, beta)
    for n in range(3):
        write(alpha, f"round{n}.txt", f"round {n}")
        wait_same(alpha, beta)
        wait_hibernating(sync, identifier)
    kills = 0
    for n in range(5):
        write(alpha, f"kill{n}.txt", f"kill {n}")
        wait_same(alpha, beta)
        stager = actors(sync, identifier)["stager"]
        if stager.state != "running":  # already asleep again: wake it with another edit
            write(alpha, f"kill{n}.again.txt", "again")
            wait_same(alpha, beta)
            stager = actors(sync, identifier)["stager"]
        if stager.state == "running" and stager.pid:
            try:
                os.kill(stager.pid, signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                continue
            wait_until(lambda: actors(sync, identifier)["stager"].restarts == kills, 10,
                       what="the killed stager to be restarted")
    assert kills >= 3  # enough kills landed to spend the budget if the exits had counted
    assert session_status(sync, identifier) == "running"
    write(alpha, "after.txt", "after the kills")
    wait_same(alpha, beta)
    now = wait_hibernating(sync, identifier)
    assert now["stager"].restarts == kills and now["transitioner"].restarts == 0
    sync.command(sm.SyncTerminate, identifier)


def wake(data_dir: str, session: str, child: str):
    """One ``WakeChild`` to the daemon's wake mailbox, as an actor sends it."""
    async def exchange():
        context = zmq.asyncio.Context()
        address = "ipc://" + os.path.join(data_dir, "daemon", "mailboxes", f"{MAILBOX}.ipc")
        client = DealerClient(context, address)
        try:
            return await client.request(WakeChild(session, child, 10.0), timeout=15.0)
        finally:
            client.close()
            context.destroy(linger=0)
    return asyncio.run(exchange())


def test_wake_mailbox_starts_a_hibernating_child_once(napping: Sync, roots):
    sync = napping
    alpha, beta = roots
    identifier = sync.create(alpha, beta)
    wait_hibernating(sync, identifier)
    first = wake(sync.daemon.data_dir, identifier, "transitioner")
    assert isinstance(first, ChildAwake) and first.started and first.idle_exit == IDLE_EXIT
    assert alive(first.pid) and actors(sync, identifier)["transitioner"].pid == first.pid
    again = wake(sync.daemon.data_dir, identifier, "transitioner")
    assert (again.started, again.pid) == (False, first.pid)
    with pytest.raises(RemoteError, match="no session"):
        wake(sync.daemon.data_dir, "sync_nosuchsession", "stager")
    with pytest.raises(RemoteError, match="no actor 'scanner'"):
        wake(sync.daemon.data_dir, identifier, "scanner")
    wait_hibernating(sync, identifier)
    assert not alive(first.pid)
    sync.command(sm.SyncTerminate, identifier)


def test_wakes_racing_the_idle_exit_always_find_the_child_running(daemon, roots, monkeypatch):
    """Idle delay 0.2 s and wakes every 0.15-0.25 s: many land while the child is deciding to
    exit or exiting. Each must still answer with a running incarnation, and none of those exits
    may count as a crash."""
    monkeypatch.setenv(IDLE_EXIT_VARIABLE, "0.2")
    daemon.start()
    sync = Sync(daemon)
    alpha, beta = roots
    identifier = sync.create(alpha, beta)
    started = 0
    for n in range(40):
        awake = wake(daemon.data_dir, identifier, "stager")
        assert awake.pid and alive(awake.pid)
        started += awake.started
        time.sleep(0.15 + (n % 5) * 0.025)  # the spacing is the test's input, not a settle
    assert started >= 5  # it did hibernate in between, many times
    now = actors(sync, identifier)["stager"]
    assert now.restarts == 0 and session_status(sync, identifier) == "running"
