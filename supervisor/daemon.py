"""The daemon: one per user and data directory; the root of the supervision tree.

``run(paths)`` (what ``mutagen-actors daemon run`` calls) prepares the data directory, takes the
lock (``LockHeld`` if another daemon has it), logs to ``daemon/daemon.log``, starts the
preloading fork server, serves the control socket, resumes persisted sessions, and runs until
SIGTERM, SIGINT or a ``StopDaemon`` request. Then it stops, in order: accepting requests, every
session (each stops its actors in reverse start order), the fork server; removes its socket and
releases the lock. A child's death never reaches this level: sessions handle it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import structlog
import zmq.asyncio

from mutagen_actors.actors.runtime import logs
from mutagen_actors.agent.memory import tidy_when_quiet
from mutagen_actors.wire.handling import NotHandled
from mutagen_actors.wire.messages import control
from mutagen_actors.wire.messages.base import Ok
from mutagen_actors.wire.stream import StreamServer
from mutagen_actors.wire.version import VERSION

from . import datadir, diagnostics, prompt_relay
from .actor_process import fork_server_context, fork_server_pid, stop_fork_server
from .forward_manager import HANDLED as FORWARD_MESSAGES, ForwardManager
from .lock import DaemonLock
from .session_supervisor import HEARTBEAT_INTERVAL, Runtime
from .sessions import Registry
from .sync_manager import HANDLED as SYNC_MESSAGES, SyncManager
from .wake_service import MAILBOX as WAKE_MAILBOX, WakeService

DEBUG_SETTLE_TIMEOUT = 20.0

log = structlog.get_logger("daemon")


def _without_resource_tracker() -> None:
    """Start no multiprocessing resource tracker process (13 MB RSS, 8 MB PSS measured).

    The fork server would start one and hand its pipe to every actor; it only cleans up named
    semaphores and shared memory that crashed processes leave, and nothing here creates those
    (actors talk over ``Pipe`` connections and ZeroMQ). The tracker's pipe is replaced by
    ``/dev/null``: its "still alive" probe succeeds, registrations are dropped. If this Python's
    multiprocessing is laid out differently, nothing is changed and the tracker starts as before.
    """
    try:
        from multiprocessing import resource_tracker

        tracker = resource_tracker._resource_tracker  # noqa: SLF001 - no public switch
        if tracker._fd is None and tracker._pid is None:  # noqa: SLF001
            tracker._fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)  # noqa: SLF001
    except (ImportError, AttributeError, OSError) as error:
        log.info("resource tracker kept", error=str(error))


class Daemon:
    def __init__(self, paths: datadir.Paths, log_level: str = "info"):
        self.paths = paths
        self.log_level = log_level
        self.started = time.time()
        self._stop = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        diagnostics.install(loop, os.path.join(os.path.dirname(self.paths.log), "stacks.txt"))
        mp_context = fork_server_context()
        from multiprocessing import forkserver

        _without_resource_tracker()
        forkserver.ensure_running()
        zmq_context = zmq.asyncio.Context()
        runtime = Runtime(mp_context, zmq_context, self.paths, self.log_level,
                          heartbeat_interval=heartbeat_interval())
        self.registry = Registry(runtime)
        self.sync = SyncManager(self.registry)
        self.forward = ForwardManager(self.registry)
        wakes = WakeService(self.registry, zmq_context, self.paths.mailbox(WAKE_MAILBOX))
        wakes.start()  # before any session: reconcilers wake on-demand children through it
        server = StreamServer(self.paths.socket, self.handle)
        await server.start()
        log.info("daemon started", version=VERSION, data_directory=self.paths.root,
                 forkserver_pid=fork_server_pid())
        # Freed memory back to the system after work (a sync create's remote probe, SSH, the
        # agent bundle: ~12 MB of free heap stayed resident after a 100k-file session's start).
        tidy = loop.create_task(tidy_when_quiet())
        try:
            self.registry.load()
            await self._stop.wait()
            log.info("daemon stopping")
        finally:
            tidy.cancel()
            await server.close()
            await self.registry.stop_all()
            await wakes.aclose()
            await prompt_relay.close_service(runtime)
            stop_fork_server()
            zmq_context.destroy(linger=0)  # never blocks on a socket left open
            log.info("daemon stopped")

    async def handle(self, message):
        if isinstance(message, control.Hello):
            if message.client_version != VERSION:
                log.warning("client version differs", client_version=message.client_version)
            return control.Welcome(VERSION, os.getpid())
        if isinstance(message, control.GetDaemonStatus):
            states = await asyncio.gather(*(s.state() for s in self.registry.sessions.values()))
            return control.DaemonStatus(VERSION, os.getpid(), self.started, self.paths.root,
                                        self.paths.log, fork_server_pid(), list(states))
        if isinstance(message, control.StopDaemon):
            asyncio.get_running_loop().call_soon(self._stop.set)
            return Ok()
        if isinstance(message, control.CreateDebugSession):
            supervisor = await self.registry.create_debug(
                message.actors, message.crash_on_start, message.name, DEBUG_SETTLE_TIMEOUT)
            return control.DebugSessionCreated(await supervisor.state())
        if isinstance(message, control.TerminateSession):
            await self.registry.terminate(message.id)
            return Ok()
        if isinstance(message, SYNC_MESSAGES):
            return await self.sync.handle(message)
        if isinstance(message, FORWARD_MESSAGES):
            return await self.forward.handle(message)
        raise NotHandled


def heartbeat_interval() -> float:
    """Seconds between heartbeats to each actor (``MUTAGEN_ACTORS_HEARTBEAT_INTERVAL``, a
    diagnostic knob for tests; default 5 s). An actor silent for 3 intervals is killed."""
    try:
        value = float(os.environ.get("MUTAGEN_ACTORS_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL))
    except ValueError:
        return HEARTBEAT_INTERVAL
    return value if 0.05 <= value <= 3600 else HEARTBEAT_INTERVAL


def run(paths: datadir.Paths) -> None:
    """Run a daemon in this process until it is told to stop (raises ``lock.LockHeld``)."""
    datadir.prepare(paths)
    lock = DaemonLock(paths.lock)
    lock.acquire()
    try:
        level = logs.level_from_environment()
        logs.configure(paths.log, level, actor="daemon")
        asyncio.run(Daemon(paths, level).run())
    finally:
        lock.release()
