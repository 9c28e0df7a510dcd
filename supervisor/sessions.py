"""The session registry of the daemon: the top of the supervision tree (one_for_one: each
session is supervised on its own; one session's trouble never touches another).

Session kinds map a persisted ``SessionRecord`` to child specs. Only the diagnostic ``debug``
kind exists so far (test actors, created by ``daemon debug-session create``); sync and forward
sessions register their own kinds in ``KINDS``.

Halts persist (``persistence.save_halt``): a session halted because an actor spent the restart
budget (or with a halt its manager recorded, such as a sync safety halt) comes back halted after
a daemon restart, its actors not started. Supervising a record again (resume, pause, reset: a
fresh start) clears the halt.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Callable

import structlog

from mutagen_actors.wire.handling import Refused

from . import persistence
from .child_spec import ChildSpec
from .persistence import SessionRecord
from .restart import Strategy
from .session_supervisor import Runtime, SessionSupervisor

DEBUG_ACTOR = "mutagen_actors.actors.runtime.debug:DebugActor"
MAX_DEBUG_ACTORS = 64
ACTOR_FAILURE = "halted-on-actor-failure"  # the ``halted`` status of a spent restart budget

log = structlog.get_logger("supervisor.sessions")


def debug_specs(record: SessionRecord) -> list[ChildSpec]:
    crash = bool(record.spec.get("crash_on_start", False))
    return [ChildSpec(f"actor-{i}", DEBUG_ACTOR, {"crash_on_start": crash})
            for i in range(1, int(record.spec.get("actors", 1)) + 1)]


KINDS: dict[str, tuple[Callable[[SessionRecord], list[ChildSpec]], Strategy]] = {
    "debug": (debug_specs, Strategy.ONE_FOR_ONE),
}


class Registry:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.sessions: dict[str, SessionSupervisor] = {}

    def _supervise(self, record: SessionRecord, restore: bool = False) -> SessionSupervisor:
        """Supervise ``record``'s session. ``restore`` (daemon start): a persisted halt is kept
        (the session starts halted); otherwise this is a fresh start and the halt is cleared."""
        specs_for, strategy = KINDS[record.kind]
        halted = ""
        if record.halted and restore:
            halted = record.halt_reason or record.halted
        elif record.halted or record.halt_reason:
            persistence.save_halt(self.runtime.paths.sessions, record, "")
        directory = self.runtime.paths.sessions

        def persist_halt(supervisor: SessionSupervisor) -> None:
            exits = {child_id: child.last_exit for child_id, child in supervisor.children.items()}
            persistence.save_halt(directory, record, ACTOR_FAILURE, supervisor.halt_reason, exits)

        supervisor = SessionSupervisor(record.id, record.name, record.kind, specs_for(record),
                                       self.runtime, strategy=strategy, created=record.created,
                                       halted=halted, last_exits=record.halt_exits,
                                       on_halt=persist_halt)
        self.sessions[record.id] = supervisor
        supervisor.start()
        return supervisor

    def load(self) -> None:
        """Start every persisted session (crash-anywhere resume)."""
        for record in persistence.load_all(self.runtime.paths.sessions):
            if record.kind not in KINDS:
                log.error("session of unknown kind not started", session=record.id,
                          kind=record.kind)
                continue
            log.info("resuming session", session=record.id, kind=record.kind,
                     halted=record.halted)
            self._supervise(record, restore=True)

    async def create_debug(self, actors: int, crash_on_start: bool, name: str,
                           settle_timeout: float) -> SessionSupervisor:
        if not 1 <= actors <= MAX_DEBUG_ACTORS:
            raise Refused("invalid-argument",
                          f"--actors must be between 1 and {MAX_DEBUG_ACTORS} (got {actors})")
        record = SessionRecord(id="debug_" + secrets.token_hex(6), name=name, kind="debug",
                               created=time.time(),
                               spec={"actors": actors, "crash_on_start": crash_on_start})
        persistence.save(self.runtime.paths.sessions, record)
        supervisor = self._supervise(record)
        try:
            await asyncio.wait_for(supervisor.settled.wait(), settle_timeout)
        except asyncio.TimeoutError:
            pass  # answered with the current state; the CLI shows "starting"
        return supervisor

    def find(self, specification: str) -> SessionSupervisor:
        matches = [s for s in self.sessions.values() if specification in (s.id, s.name)]
        if not matches:
            raise Refused("not-found", f'specification "{specification}" did not match any sessions')
        if len(matches) > 1:
            raise Refused("invalid-argument", f'specification "{specification}" matches '
                          f"{len(matches)} sessions; use an identifier")
        return matches[0]

    async def terminate(self, specification: str) -> None:
        supervisor = self.find(specification)
        await supervisor.stop()
        persistence.delete(self.runtime.paths.sessions, supervisor.id)
        self.sessions.pop(supervisor.id, None)

    async def stop_all(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.sessions.values()))
