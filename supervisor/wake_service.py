"""The daemon's wake mailbox: actors ask it to have an on-demand sibling running.

A ZeroMQ ROUTER (``wire.sockets.Mailbox``) at ``<data>/daemon/mailboxes/supervisor.ipc`` (0600
in the 0700 mailbox directory, like every actor mailbox). It answers ``WakeChild(session, child,
timeout)`` with ``ChildAwake`` once that child of that session runs and has restarted its idle
clock (``SessionSupervisor.wake``), or with ``ErrorReply``: ``not-found`` (unknown session or
child), ``unavailable`` (the session is halted or stopping, or the child was not ready within
``timeout``, bounded to ``MAX_TIMEOUT`` seconds). Each request is handled in its own task, so a
slow start never delays another session's wake; the tasks are cancelled on ``aclose``.
"""

from __future__ import annotations

import asyncio

import structlog

from mutagen_actors.wire.handling import NotHandled, Refused, answer
from mutagen_actors.wire.messages.actor import ChildAwake, WakeChild
from mutagen_actors.wire.sockets import Mailbox

MAILBOX = "supervisor"  # the mailbox token: <data>/daemon/mailboxes/supervisor.ipc
MAX_TIMEOUT = 60.0

log = structlog.get_logger("supervisor.wake")


class WakeService:
    def __init__(self, registry, zmq_context, endpoint: str):
        self.registry = registry
        self.endpoint = endpoint
        self._mailbox = Mailbox(zmq_context, endpoint, log=log)
        self._receiver: asyncio.Task | None = None
        self._requests: set = set()

    def start(self) -> None:
        self._mailbox.bind()
        self._receiver = asyncio.ensure_future(self._receive())

    async def aclose(self) -> None:
        tasks = [t for t in (self._receiver, *self._requests) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._mailbox.close()

    async def _receive(self) -> None:
        while True:
            request = await self._mailbox.receive()
            task = asyncio.ensure_future(self._answer(request))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _answer(self, request) -> None:
        reply = await answer(self.handle, request.body, log)
        await request.reply(reply)

    async def handle(self, message):
        if not isinstance(message, WakeChild):
            raise NotHandled
        supervisor = self.registry.sessions.get(message.session)
        if supervisor is None:
            raise Refused("not-found", f"no session {message.session}")
        timeout = min(max(message.timeout, 0.0), MAX_TIMEOUT)
        try:
            started, pid = await asyncio.wait_for(supervisor.wake(message.child), timeout)
        except asyncio.TimeoutError:
            raise Refused("unavailable", f"actor {message.child!r} of session {message.session} "
                                         f"was not ready within {timeout:g} s") from None
        child = supervisor.children[message.child]
        idle_exit = child.spec.idle_exit if child.spec.on_demand else 0.0
        return ChildAwake(started, pid, idle_exit)
