"""A child that fails to start and then hangs while exiting does not stall its session: the
supervisor waits a bounded grace for the exit, kills it, and goes on (restart, then halt)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time

import zmq.asyncio

from mutagen_actors.supervisor import datadir
from mutagen_actors.supervisor.actor_process import fork_server_context, stop_fork_server
from mutagen_actors.supervisor.child_spec import ChildSpec
from mutagen_actors.supervisor.restart import RestartBudget
from mutagen_actors.supervisor.session_supervisor import (
    FAILED_EXIT_GRACE,
    Runtime,
    SessionSupervisor,
)

DEBUG_ACTOR = "mutagen_actors.actors.runtime.debug:DebugActor"


def test_a_failed_start_that_hangs_at_exit_is_killed_and_the_session_halts():
    root = tempfile.mkdtemp(prefix="ma-", dir="/tmp")

    async def main():
        paths = datadir.prepare(datadir.Paths(root))
        context = zmq.asyncio.Context()
        runtime = Runtime(fork_server_context(), context, paths)
        spec = ChildSpec("stuck", DEBUG_ACTOR, {"crash_on_start": True, "hang_on_exit": True},
                         shutdown=1.0, start_timeout=10.0)
        supervisor = SessionSupervisor("dbug_stuck", "stuck", "debug", [spec], runtime,
                                       budget=RestartBudget(max_restarts=1, period=30))
        started = time.monotonic()
        supervisor.start()
        try:
            deadline = started + 4 * FAILED_EXIT_GRACE + 10
            while supervisor.status != "halted":
                assert time.monotonic() < deadline, "the session neither restarted nor halted"
                await asyncio.sleep(0.05)
            assert "crash on start requested" in supervisor.halt_reason
            child = supervisor.children["stuck"]
            assert child.process is None or child.process.exited.done()  # nothing left behind
        finally:
            await supervisor.stop()
            context.term()

    try:
        asyncio.run(main())
    finally:
        stop_fork_server()
        shutil.rmtree(root, ignore_errors=True)
