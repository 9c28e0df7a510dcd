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

Halts are persisted by the owner: ``on_halt(supervisor)`` is called as the session halts (before
its children are stopped). A supervisor built with ``halted`` (a reason: the halt read back from
the session record after a daemon restart) starts halted: no child is started, the status and
the reason are those of the halt and ``last_exits`` gives each child's last exit back.

On-demand children (``ChildSpec.on_demand``) *hibernate*: they are not started with the session
(state ``hibernating``, no process), and one that exits with status 0 by itself (its idle exit)
goes back to ``hibernating`` at once: not an exit to handle, no restart, no restart budget.
``wake(child_id)`` starts a hibernating child (or finds it running), sends it ``KeepAwake`` so
its idle clock restarts, and returns once it answered; wakes of one child are serialized, and
an exit racing a wake (the child decided to hibernate just before) is waited out and the child
started again. Any other exit of an on-demand child is handled like any child's.
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
from mutagen_actors.wire.handling import Refused
from mutagen_actors.wire.messages.actor import GetStatistics, KeepAwake
from mutagen_actors.wire.messages.control import ActorCounters, ActorState, SessionState
from mutagen_actors.wire.sockets import DealerClient

from .actor_process import ActorProcess, Exit, StartFailed
from .child_spec import ChildSpec
from .restart import RestartBudget, Strategy, children_to_restart, should_restart
from .waiting import cancel_and_wait, done_within

HEARTBEAT_INTERVAL = 5.0
HEARTBEAT_MISSES = 3
WAKE_TOUCH_TIMEOUT = 1.0  # KeepAwake to a running child (it may be exiting: then start it again)
WAKE_POLL = 0.005  # while another task starts or restarts the child
FAILED_EXIT_GRACE = 3.0  # seconds a child that failed to start may take to exit before SIGKILL


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
    waking: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)


async def _ask(request):
    """Await ``request`` (a ``DealerClient`` call) in its own task. A child's client is closed
    the moment its exit is seen, and pyzmq then cancels a send still waiting for a connection:
    that cancellation is the request's failure (``ConnectionError``), not the caller's.
    (On-demand children exit routinely, so a status or heartbeat request can meet that.)"""
    task = asyncio.ensure_future(request)
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task.cancelled():
        raise ConnectionError("the actor's mailbox was closed during the request")
    return task.result()


class SessionSupervisor:
    def __init__(self, session_id: str, name: str, kind: str, specs: list[ChildSpec],
                 runtime: Runtime, *, strategy: Strategy = Strategy.ONE_FOR_ONE,
                 budget: RestartBudget | None = None, created: float | None = None,
                 halted: str = "", last_exits: dict | None = None, on_halt=None):
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
        self._starts: set = set()  # child starts requested by wake(), owned here
        self._stopping = False
        self._restored_halt = halted
        self._last_exits = dict(last_exits or {})
        self.on_halt = on_halt  # called with this supervisor as it halts (persistence)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._restored_halt:
            self.status = "halted"
            self.halt_reason = self._restored_halt
            for child_id, child in self.children.items():
                child.last_exit = str(self._last_exits.get(child_id, ""))
            self.settled.set()
            self.log.warning("session restored halted", reason=self.halt_reason)
            return
        self._task = asyncio.ensure_future(self._supervise())
        self._heartbeat = asyncio.ensure_future(self._heartbeats())

    async def stop(self) -> None:
        """Stop every child (reverse start order); the session ends ``stopped`` unless halted."""
        self._stopping = True
        for task in (self._task, self._heartbeat):
            if task is not None:
                await cancel_and_wait(task)
        await asyncio.gather(*self._starts, return_exceptions=True)  # bounded by start_timeout
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
            child = self.children[child_id]
            if child.spec.on_demand:
                child.state = "hibernating"  # started by the first wake()
            else:
                await self._start_child(child)
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
        if all(c.state in ("running", "stopped", "hibernating") for c in self.children.values()):
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
        if self.on_halt is not None:
            try:
                self.on_halt(self)
            except Exception:  # noqa: BLE001 - the halt itself must still happen
                self.log.exception("halt not persisted")
        await self._stop_children(list(reversed(self.order)))
        self.settled.set()

    # ------------------------------------------------------------------ children

    async def _start_child(self, child: Child, state: str = "") -> None:
        child.incarnation += 1
        incarnation = child.incarnation
        child.state = state or ("starting" if child.restarts == 0 else "restarting")
        child.mailbox = self.runtime.paths.mailbox(child.spec.mailbox or secrets.token_hex(8))
        launch = ActorLaunch(
            session=self.id, actor_id=child.spec.id, actor_class=child.spec.actor_class,
            mailbox=child.mailbox, supervisor_pid=os.getpid(), restarts=child.restarts,
            log_path=self.runtime.paths.log, log_level=self.runtime.log_level,
            args=dict(child.spec.args),
            idle_exit=child.spec.idle_exit if child.spec.on_demand else 0.0)
        process = ActorProcess(self.runtime.mp_context, launch)
        child.process = process
        try:
            await process.start(child.spec.start_timeout)
        except StartFailed as failure:
            if child.incarnation != incarnation:
                return  # stopped while starting: that was expected
            child.state = "failed"
            if process.pid:
                # It reported the failure and is exiting (or was killed). Its exit is bounded:
                # an interpreter's shutdown can hang (a worker thread stuck in a DNS lookup,
                # a task that ignores cancellation), and the session must not wait on it.
                if not await done_within(process.exited, FAILED_EXIT_GRACE):
                    self.log.warning("actor did not exit after a failed start; killing it",
                                     actor=child.spec.id, actor_pid=process.pid)
                    process.kill()
                    await asyncio.shield(process.exited)
            self._events.put_nowait((child, incarnation, f"start failed: {failure}"))
            return
        if child.incarnation != incarnation:
            return  # stopped while starting (the stop waited for its exit)
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
                                                               "restarting", "waking"):
            self._close_client(child)
            if child.spec.on_demand and exit_.normal:
                self._hibernated(child, exit_)
                return
            child.state = "failed"
            self._events.put_nowait((child, incarnation, exit_))

    def _hibernated(self, child: Child, exit_: "Exit") -> None:
        """An on-demand child ended itself normally (its idle exit): not a crash."""
        child.incarnation += 1
        child.process = None
        child.state = "hibernating"
        child.last_exit = Exit(exit_.status, "idle").describe()
        self.log.info("actor hibernating", actor=child.spec.id)

    # ------------------------------------------------------------------ waking

    async def wake(self, child_id: str) -> tuple[bool, int]:
        """Have child ``child_id`` running, its idle clock restarted; returns (whether a new
        incarnation started meanwhile, its pid). Refused: ``not-found`` (no such child),
        ``unavailable`` (the session is halted or stopping). No deadline of its own: the
        caller bounds the wait (a cancelled wait leaves a start in progress to finish here)."""
        child = self.children.get(child_id)
        if child is None:
            raise Refused("not-found", f"session {self.id} has no actor {child_id!r}")
        entry = child.incarnation
        async with child.waking:
            while True:
                if self._stopping or self.status not in ("starting", "running"):
                    status = "stopping" if self._stopping else self.status
                    reason = f": {self.halt_reason}" if self.halt_reason else ""
                    raise Refused("unavailable", f"session {self.id} is {status}{reason}")
                if child.state == "hibernating":
                    start = asyncio.ensure_future(self._start_child(child, "waking"))
                    self._starts.add(start)
                    start.add_done_callback(self._starts.discard)
                    await asyncio.shield(start)
                    continue
                client = child.client
                if child.state == "running" and client is not None:
                    try:
                        await _ask(client.request(KeepAwake(), timeout=WAKE_TOUCH_TIMEOUT))
                    except (RequestTimeout, ConnectionError):
                        continue  # exiting (then hibernating or failed) or slow: look again
                    except RemoteError as error:
                        raise Refused("failed", f"actor {child_id!r}: {error.message}") from None
                    return child.incarnation != entry, child.process.pid if child.process else 0
                await asyncio.sleep(WAKE_POLL)  # (re)starting or stopping: the supervisor is on it

    async def _stop_children(self, ids: list[str]) -> None:
        for child_id in ids:
            child = self.children[child_id]
            process = child.process
            if process is None:
                if child.state == "hibernating":
                    child.state = "stopped"
                continue
            if child.state in ("running", "starting", "restarting", "waking"):
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
            await _ask(client.ping(timeout=self.runtime.heartbeat_interval))
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
            reply = await _ask(child.client.request(GetStatistics(), timeout=timeout))
        except (RequestTimeout, RemoteError, ConnectionError):
            return None
        return ActorCounters(reply.queue_depth, reply.handled, reply.last_activity)

