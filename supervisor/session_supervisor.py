"""One session's supervisor: a named group of actors with its own restart budget and status.

Children start in spec order (each waits for the previous one's *ready*) and stop in reverse
order. One supervision task handles child exits one at a time (the same discipline as an actor),
so restarts never interleave. An exit is handled like this:

1. the session is stopping or halted: nothing to do;
2. ``restart.should_restart`` says no (temporary child, or transient child that exited
   normally): the child stays ``stopped``;
3. the budget (``RestartBudget``) is spent: the session is marked ``halted`` with the reason,
   every other child is stopped, and nothing restarts until the session is started again;
4. otherwise the child (``one_for_one``) or the child and those after it (``rest_for_one``) are
   restarted at once. A start that fails counts as an exit of that child.

A heartbeat task pings running children; one that stays silent for ``interval * misses`` seconds
is killed (SIGKILL), which then goes through the same exit handling.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import dataclass, field

import structlog

from mutagen_actors.actors.runtime.launch import ActorLaunch
from mutagen_actors.wire.errors import RemoteError, RequestTimeout
from mutagen_actors.wire.heartbeat import Liveness
from mutagen_actors.wire.messages.actor import GetStatistics
from mutagen_actors.wire.messages.control import ActorCounters, ActorState, SessionState
from mutagen_actors.wire.sockets import DealerClient

from .actor_process import ActorProcess, Exit, StartFailed
from .child_spec import ChildSpec
from .restart import RestartBudget, Strategy, children_to_restart, should_restart

HEARTBEAT_INTERVAL = 5.0
HEARTBEAT_MISSES = 3


@dataclass
class Runtime:
    """What every session supervisor of one daemon shares."""

    mp_context: object
    zmq_context: object
    paths: object  # supervisor.datadir.Paths
    log_level: str = "info"
    clock: object = time.monotonic
    heartbeat_interval: float = HEARTBEAT_INTERVAL


@dataclass
class Child:
    spec: ChildSpec
    state: str = "stopped"
    process: ActorProcess | None = None
    client: DealerClient | None = None
    restarts: int = 0
    last_exit: str = ""
    ready_at: float = 0.0
    mailbox: str = ""
    liveness: Liveness | None = None
    incarnation: int = 0
    watcher: asyncio.Task | None = field(default=None, repr=False)


class SessionSupervisor:
    def __init__(self, session_id: str, name: str, kind: str, specs: list[ChildSpec],
                 runtime: Runtime, *, strategy: Strategy = Strategy.ONE_FOR_ONE,
                 budget: RestartBudget | None = None, created: float | None = None):
        self.id = session_id
        self.name = name
        self.kind = kind
        self.runtime = runtime
        self.strategy = strategy
        self.budget = budget or RestartBudget()
        self.created = created if created is not None else time.time()
        self.status = "starting"
        self.halt_reason = ""
        self.children = {spec.id: Child(spec) for spec in specs}
        self.order = [spec.id for spec in specs]
        self.log = structlog.get_logger("supervisor").bind(session=session_id)
        self._events: asyncio.Queue = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._heartbeat: asyncio.Task | None = None
        self.settled = asyncio.Event()  # set once the first start finished (running or halted)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._supervise())
        self._heartbeat = asyncio.ensure_future(self._heartbeats())

    async def stop(self) -> None:
        """Stop every child (reverse start order); the session ends ``stopped`` unless halted."""
        for task in (self._task, self._heartbeat):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._stop_children(list(reversed(self.order)))
        if self.status != "halted":
            self.status = "stopped"
        self.settled.set()
        self.log.info("session stopped")

    async def _supervise(self) -> None:
        try:
            await self._supervise_children()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - a bug here must not go unnoticed
            self.log.exception("session supervisor failed")
            await self.halt(f"session supervisor failed: {type(error).__name__}: {error}")

    async def _supervise_children(self) -> None:
        for child_id in self.order:
            await self._start_child(self.children[child_id])
        self._check_settled()
        while self.status not in ("halted", "stopped"):
            child, incarnation, exit_ = await self._events.get()
            if incarnation != child.incarnation:
                continue  # an incarnation already replaced
            await self._handle_exit(child, exit_)
            self._check_settled()

    def _check_settled(self) -> None:
        """``running`` (and ``settled``) once every child that should run is running."""
        if self.status != "starting" or not self._events.empty():
            return
        if all(c.state in ("running", "stopped") for c in self.children.values()):
            self.status = "running"
            self.settled.set()

    async def _handle_exit(self, child: Child, exit_: "Exit | str") -> None:
        reason = exit_ if isinstance(exit_, str) else exit_.describe()
        normal = isinstance(exit_, Exit) and exit_.normal
        child.last_exit = reason
        self.log.warning("actor exited", actor=child.spec.id, reason=reason)
        if not should_restart(child.spec.restart, normal):
            child.state = "stopped"
            return
        self.budget, allowed = self.budget.register(self.runtime.clock())
        if not allowed:
            await self.halt(f"actor {child.spec.id!r} exceeded the restart budget "
                            f"({self.budget.describe()}); last exit: {reason}")
            return
        ids = children_to_restart(self.strategy, self.order, child.spec.id)
        await self._stop_children([i for i in reversed(ids) if i != child.spec.id])
        for child_id in ids:
            restarted = self.children[child_id]
            restarted.restarts += 1
            await self._start_child(restarted)

    async def halt(self, reason: str) -> None:
        self.status = "halted"
        self.halt_reason = reason
        self.log.error("session halted", reason=reason)
        await self._stop_children(list(reversed(self.order)))
        self.settled.set()

    # ------------------------------------------------------------------ children

    async def _start_child(self, child: Child) -> None:
        child.incarnation += 1
        incarnation = child.incarnation
        child.state = "starting" if child.restarts == 0 else "restarting"
        child.mailbox = self.runtime.paths.mailbox(child.spec.mailbox or secrets.token_hex(8))
        launch = ActorLaunch(
            session=self.id, actor_id=child.spec.id, actor_class=child.spec.actor_class,
            mailbox=child.mailbox, supervisor_pid=os.getpid(), restarts=child.restarts,
            log_path=self.runtime.paths.log, log_level=self.runtime.log_level,
            args=dict(child.spec.args))
        process = ActorProcess(self.runtime.mp_context, launch)
        child.process = process
        try:
            await process.start(child.spec.start_timeout)
        except StartFailed as failure:
            child.state = "failed"
            if process.pid:
                await asyncio.shield(process.exited)  # it is exiting or was killed
            self._events.put_nowait((child, incarnation, f"start failed: {failure}"))
            return
        child.client = DealerClient(self.runtime.zmq_context, child.mailbox, log=self.log)
        child.ready_at = time.time()
        child.liveness = Liveness(self.runtime.heartbeat_interval, HEARTBEAT_MISSES,
                                  self.runtime.clock())
        child.state = "running"
        self.log.info("actor running", actor=child.spec.id, actor_pid=process.pid,
                      restarts=child.restarts)
        child.watcher = asyncio.ensure_future(self._watch(child, incarnation, process))

    async def _watch(self, child: Child, incarnation: int, process: ActorProcess) -> None:
        exit_ = await process.exited
        if child.incarnation == incarnation and child.state in ("running", "starting",
                                                               "restarting"):
            child.state = "failed"
            self._close_client(child)
            self._events.put_nowait((child, incarnation, exit_))

    async def _stop_children(self, ids: list[str]) -> None:
        for child_id in ids:
            child = self.children[child_id]
            process = child.process
            if process is None:
                continue
            if child.state in ("running", "starting", "restarting"):
                child.state = "stopping"
            child.incarnation += 1  # its exit is expected, not a crash
            exit_ = await process.stop(child.client, child.spec.shutdown)
            self._close_client(child)
            child.process = None
            child.state = "stopped"
            self.log.info("actor stopped", actor=child_id, result=exit_.describe())

    def _close_client(self, child: Child) -> None:
        if child.client is not None:
            child.client.close()
            child.client = None

    # ------------------------------------------------------------------ heartbeats

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.runtime.heartbeat_interval)
            running = [c for c in self.children.values() if c.state == "running" and c.client]
            await asyncio.gather(*(self._beat(c) for c in running))

    async def _beat(self, child: Child) -> None:
        client, process = child.client, child.process
        try:
            await client.ping(timeout=self.runtime.heartbeat_interval)
            child.liveness = child.liveness.heard(self.runtime.clock())
        except (RequestTimeout, RemoteError, ConnectionError):
            if child.liveness.dead(self.runtime.clock()) and child.process is process:
                self.log.error("actor unresponsive; killing it", actor=child.spec.id,
                               actor_pid=process.pid)
                process.kill()

    # ------------------------------------------------------------------ status

    async def state(self, statistics_timeout: float = 0.5) -> SessionState:
        children = [self.children[i] for i in self.order]
        counters = await asyncio.gather(*(self._counters(c, statistics_timeout) for c in children))
        actors = [
            ActorState(id=c.spec.id, state=c.state,
                       pid=c.process.pid if c.process and not c.process.exited.done() else 0,
                       restarts=c.restarts, mailbox=c.mailbox if c.state == "running" else "",
                       last_exit=c.last_exit, ready_at=c.ready_at, statistics=stats)
            for c, stats in zip(children, counters)
        ]
        return SessionState(self.id, self.name, self.kind, self.status, self.halt_reason,
                            self.created, self.strategy.value, actors)

    async def _counters(self, child: Child, timeout: float) -> ActorCounters | None:
        if child.state != "running" or child.client is None:
            return None
        try:
            reply = await child.client.request(GetStatistics(), timeout=timeout)
        except (RequestTimeout, RemoteError, ConnectionError):
            return None
        return ActorCounters(reply.queue_depth, reply.handled, reply.last_activity)

